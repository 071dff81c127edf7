package agenttest

import (
	"io"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// OpenPTY returns a pseudo-terminal pair (/dev/ptmx, pts(4)), closed by
// t.Cleanup; it skips the test where there are none.
func OpenPTY(t testing.TB) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// Terminal is a pseudo-terminal a program under test writes to: Type
// what the user types on Master, and read what the program drew with
// Screen.
type Terminal struct {
	Master *os.File // the user's side: the keyboard and the screen
	TTY    *os.File // the program's side
	screen Output
	copied chan struct{}
}

// OpenTerminal is OpenPTY with the screen collected as it is drawn.
func OpenTerminal(t testing.TB) *Terminal {
	t.Helper()
	term := &Terminal{copied: make(chan struct{})}
	term.Master, term.TTY = OpenPTY(t)
	go func() {
		defer close(term.copied)
		io.Copy(&term.screen, term.Master) // ends with EIO once the TTY is closed
		term.screen.Close()
	}()
	return term
}

// Screen closes the program's side and returns everything it drew.
func (term *Terminal) Screen() string {
	term.TTY.Close()
	<-term.copied
	return term.screen.String()
}
