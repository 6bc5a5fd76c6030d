package e2etest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"
)

// CompressingRotator is an io.Writer for mocklog (Options.Writer) that
// rotates its file the way logrotate with compress (and no delaycompress)
// or the kubelet does, as fast as a busy service can make it: every
// MinEvery–MaxEvery (random, from Seed) the file is renamed to
// <path>.<n>, a new file is started, and the rotated file is gzipped to
// <path>.<n>.gz and removed at once, in the background. Writes are whole
// mocklog batches, so a rotation never splits a line.
type CompressingRotator struct {
	Path               string
	MinEvery, MaxEvery time.Duration
	Seed               uint64

	mu        sync.Mutex
	f         *os.File
	next      time.Time
	n         int
	rng       *rand.Rand
	wg        sync.WaitGroup
	err       error
	rotations int
}

// Write appends p to the current file, rotating first when it is time.
func (r *CompressingRotator) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	if r.rng == nil {
		r.rng = rand.New(rand.NewPCG(r.Seed, 0x5eed))
	}
	if r.f == nil || !time.Now().Before(r.next) {
		if err := r.rotate(); err != nil {
			r.err = err
			return 0, err
		}
	}
	return r.f.Write(p)
}

func (r *CompressingRotator) rotate() error {
	if r.f != nil {
		if err := r.f.Close(); err != nil {
			return err
		}
		r.n++
		rotated := fmt.Sprintf("%s.%d", r.Path, r.n)
		if err := os.Rename(r.Path, rotated); err != nil {
			return err
		}
		r.rotations++
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := gzipAndRemove(rotated); err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
			}
		}()
	}
	f, err := os.OpenFile(r.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	r.f = f
	span := int64(r.MaxEvery - r.MinEvery)
	every := r.MinEvery
	if span > 0 {
		every += time.Duration(r.rng.Int64N(span))
	}
	r.next = time.Now().Add(every)
	return nil
}

// Close closes the current file (not rotated) and waits for the
// compressions; it returns the first error and the number of rotations.
func (r *CompressingRotator) Close() (int, error) {
	r.mu.Lock()
	if r.f != nil {
		if err := r.f.Close(); err != nil && r.err == nil {
			r.err = err
		}
		r.f = nil
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rotations, r.err
}

// gzipAndRemove writes path.gz in place, as gzip does (the agent may see
// it half-written), and removes path.
func gzipAndRemove(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(path+".gz", buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Remove(path)
}
