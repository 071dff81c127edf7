package backup

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// The index file is text, a line per machine directory followed by a line
// per source of it, fields separated by tabs; a field that is empty or
// holds a tab, a newline, a quote or a backslash is written as a Go
// quoted string (strconv.Quote). Plain text, not JSON: it is read whole
// on every listing, and on a unit of 10,000 machines splitting lines is
// several times cheaper than decoding the same as JSON.
//
//	turku-storage snapshot index  FORMAT  ZONE
//	M  DIR  MTIME  CTIME  INODE
//	S  SOURCE  HASDIR  MTIME  CTIME  INODE  USAGE  USAGE-ERROR  LATEST  [SNAPSHOT-DIR  NAME  FINISH]...
//
// Times are Unix nanoseconds; HASDIR is 1 when the source has a snapshot
// directory (whose stamp follows), 0 when not; USAGE is -1 without a
// ledger; NAME is the .json's name when it is not the directory's.
const indexMagic = "turku-storage snapshot index"

// errIndexSyntax is what a damaged index file reads as.
var errIndexSyntax = errors.New("not a snapshot index")

func indexField(b *bytes.Buffer, s string) {
	b.WriteByte('\t')
	if s == "" || strings.ContainsAny(s, "\t\n\r\"\\") {
		b.WriteString(strconv.Quote(s))
		return
	}
	b.WriteString(s)
}

func indexInt(b *bytes.Buffer, n int64) {
	b.WriteByte('\t')
	b.WriteString(strconv.FormatInt(n, 10))
}

// encode writes the index as text.
func (x *snapIndex) encode() []byte {
	var b bytes.Buffer
	b.WriteString(indexMagic)
	indexInt(&b, int64(x.Format))
	indexField(&b, x.Location)
	b.WriteByte('\n')
	for dir, m := range x.Machines {
		b.WriteByte('M')
		indexField(&b, dir)
		m.Stamp.encode(&b)
		b.WriteByte('\n')
		for name, s := range m.Sources {
			b.WriteByte('S')
			indexField(&b, name)
			has := int64(0)
			if s.HasDir {
				has = 1
			}
			indexInt(&b, has)
			s.Stamp.encode(&b)
			indexInt(&b, s.Usage)
			indexField(&b, s.UsageErr)
			indexField(&b, s.Latest)
			for _, sn := range s.Snapshots {
				indexField(&b, sn.Dir)
				indexField(&b, sn.Name)
				indexInt(&b, sn.Finish)
			}
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func (s dirStamp) encode(b *bytes.Buffer) {
	indexInt(b, s.Mtime)
	indexInt(b, s.Ctime)
	b.WriteByte('\t')
	b.WriteString(strconv.FormatUint(s.Ino, 10))
}

// decodeIndex reads an index file's text. Only the header is read when
// its format is not indexFormat.
func decodeIndex(data []byte) (*snapIndex, error) {
	text := string(data)
	header, rest, ok := strings.Cut(text, "\n")
	f := strings.Split(header, "\t")
	if !ok || len(f) != 3 || f[0] != indexMagic {
		return nil, errIndexSyntax
	}
	format, err := strconv.Atoi(f[1])
	if err != nil {
		return nil, errIndexSyntax
	}
	x := &snapIndex{Format: format, Machines: map[string]*indexMachine{}}
	if x.Location, err = indexUnquote(f[2]); err != nil || format != indexFormat {
		return x, err
	}
	var m *indexMachine
	for line := range strings.SplitSeq(rest, "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		switch {
		case f[0] == "M" && len(f) == 5:
			dir, err := indexUnquote(f[1])
			if err != nil {
				return nil, err
			}
			m = &indexMachine{Sources: map[string]*indexSource{}}
			if m.Stamp, err = decodeStamp(f[2:5]); err != nil {
				return nil, err
			}
			x.Machines[dir] = m
		case f[0] == "S" && m != nil && len(f) >= 9 && (len(f)-9)%3 == 0:
			name, s, err := decodeSource(f)
			if err != nil {
				return nil, err
			}
			m.Sources[name] = s
		default:
			return nil, errIndexSyntax
		}
	}
	return x, nil
}

func decodeSource(f []string) (string, *indexSource, error) {
	name, err := indexUnquote(f[1])
	if err != nil {
		return "", nil, err
	}
	s := &indexSource{HasDir: f[2] == "1"}
	if s.Stamp, err = decodeStamp(f[3:6]); err != nil {
		return "", nil, err
	}
	if s.Usage, err = strconv.ParseInt(f[6], 10, 64); err != nil {
		return "", nil, errIndexSyntax
	}
	if s.UsageErr, err = indexUnquote(f[7]); err != nil {
		return "", nil, err
	}
	if s.Latest, err = indexUnquote(f[8]); err != nil {
		return "", nil, err
	}
	if n := (len(f) - 9) / 3; n > 0 {
		s.Snapshots = make([]indexSnap, n)
	}
	for i := range s.Snapshots {
		t := f[9+3*i:]
		sn := &s.Snapshots[i]
		if sn.Dir, err = indexUnquote(t[0]); err != nil {
			return "", nil, err
		}
		if sn.Name, err = indexUnquote(t[1]); err != nil {
			return "", nil, err
		}
		if sn.Finish, err = strconv.ParseInt(t[2], 10, 64); err != nil {
			return "", nil, errIndexSyntax
		}
	}
	return name, s, nil
}

func decodeStamp(f []string) (dirStamp, error) {
	var s dirStamp
	var err1, err2, err3 error
	s.Mtime, err1 = strconv.ParseInt(f[0], 10, 64)
	s.Ctime, err2 = strconv.ParseInt(f[1], 10, 64)
	s.Ino, err3 = strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return s, errIndexSyntax
	}
	return s, nil
}

func indexUnquote(s string) (string, error) {
	if !strings.HasPrefix(s, `"`) {
		return s, nil
	}
	u, err := strconv.Unquote(s)
	if err != nil {
		return "", errIndexSyntax
	}
	return u, nil
}
