package restore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Credentials returns the agent's per-session rsync login: user (else a
// prompt), and the password from passwordFile, RSYNC_PASSWORD or a
// prompt without echo. It asks on stdin, prompting on prompt, only when
// stdin is a terminal.
func Credentials(user, passwordFile string, stdin *os.File, prompt io.Writer) (string, string, error) {
	fd := int(stdin.Fd())
	interactive := term.IsTerminal(fd)
	if user == "" {
		if !interactive {
			return "", "", errors.New("no --user: give the user turku-agent-ping --restore printed")
		}
		fmt.Fprint(prompt, "rsync user (printed by turku-agent-ping --restore): ")
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil {
			return "", "", fmt.Errorf("read user: %w", err)
		}
		user = strings.TrimSpace(line)
	}
	if user == "" || strings.ContainsAny(user, "@/: \x00") {
		return "", "", fmt.Errorf("rsync user %q: not a user name", user)
	}
	var pass string
	switch {
	case passwordFile != "":
		data, err := os.ReadFile(passwordFile)
		if err != nil {
			return "", "", fmt.Errorf("--password-file: %w", err)
		}
		pass = strings.TrimRight(string(data), "\r\n")
	case os.Getenv("RSYNC_PASSWORD") != "":
		pass = os.Getenv("RSYNC_PASSWORD")
	case interactive:
		fmt.Fprint(prompt, "rsync password (printed by turku-agent-ping --restore): ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", "", fmt.Errorf("read password: %w", err)
		}
		pass = string(b)
	}
	if pass == "" {
		return "", "", errors.New("no rsync password: use --password-file or RSYNC_PASSWORD, or run on a terminal to be asked")
	}
	if strings.ContainsAny(pass, "\x00\n") {
		return "", "", errors.New("rsync password contains a NUL or newline")
	}
	return user, pass, nil
}
