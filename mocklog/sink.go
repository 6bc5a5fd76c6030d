package mocklog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
)

// sink is where batches go. room says how many bytes may be written before
// the next rotation, so batches end at event boundaries near the rotation
// size and rotation never splits an event.
type sink interface {
	write(p []byte) error
	room() int64
	Close() error
}

type writerSink struct{ w io.Writer }

func (s writerSink) write(p []byte) error {
	if _, err := s.w.Write(p); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (writerSink) room() int64  { return math.MaxInt64 }
func (writerSink) Close() error { return nil }

// teeSink writes to a file and a writer (mock_log's --path with --stderr).
type teeSink struct {
	file *fileSink
	w    writerSink
}

func (s teeSink) write(p []byte) error {
	if err := s.file.write(p); err != nil {
		return err
	}
	return s.w.write(p)
}

func (s teeSink) room() int64  { return s.file.room() }
func (s teeSink) Close() error { return s.file.Close() }

// fileSink appends to a file and rotates it like logrotate: once the file has
// reached maxBytes, after the write that got it there.
type fileSink struct {
	path      string
	maxBytes  int64
	mode      string
	keep      int
	f         *os.File
	size      int64
	rotations uint64
}

func openFileSink(path string, maxBytes int64, mode string, keep int) (*fileSink, error) {
	s := &fileSink{path: path, maxBytes: maxBytes, mode: mode, keep: keep}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *fileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat log file: %w", err)
	}
	s.f, s.size = f, info.Size()
	return nil
}

func (s *fileSink) room() int64 {
	if s.maxBytes <= 0 {
		return math.MaxInt64
	}
	return s.maxBytes - s.size
}

func (s *fileSink) write(p []byte) error {
	n, err := s.f.Write(p)
	s.size += int64(n)
	if err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	if s.maxBytes > 0 && s.size >= s.maxBytes {
		return s.rotate()
	}
	return nil
}

func (s *fileSink) name(i int) string { return s.path + "." + strconv.Itoa(i) }

// shift makes room for a new path.1: path.i becomes path.i+1 and whatever
// would become path.keep+1 is removed. Only existing files are touched, so a
// large keep costs nothing until that many files exist.
func (s *fileSink) shift() error {
	n := 0
	for n < s.keep {
		if _, err := os.Lstat(s.name(n + 1)); err != nil {
			break
		}
		n++
	}
	if n == s.keep {
		if err := os.Remove(s.name(n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate: %w", err)
		}
		n--
	}
	for i := n; i >= 1; i-- {
		if err := os.Rename(s.name(i), s.name(i+1)); err != nil {
			return fmt.Errorf("rotate: %w", err)
		}
	}
	return nil
}

func (s *fileSink) rotate() error {
	s.rotations++
	if s.keep > 0 {
		if err := s.shift(); err != nil {
			return err
		}
	}
	if s.mode == RotateCopyTruncate {
		if s.keep > 0 {
			if err := copyFile(s.path, s.name(1)); err != nil {
				return fmt.Errorf("rotate: %w", err)
			}
		}
		// The file is opened O_APPEND, so the next write lands at offset 0.
		if err := s.f.Truncate(0); err != nil {
			return fmt.Errorf("rotate: truncate %s: %w", s.path, err)
		}
		s.size = 0
		return nil
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("rotate: close %s: %w", s.path, err)
	}
	var err error
	if s.keep > 0 {
		err = os.Rename(s.path, s.name(1))
	} else {
		err = os.Remove(s.path)
	}
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	return s.open()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (s *fileSink) Close() error {
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return nil
}
