package buffer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicelog/sluice/agent/buffer"
)

// BenchmarkAppendCommit measures the spill path: Append (write + fsync) of
// one record and its replay (Next + Commit, which saves the cursor), in
// 1 MiB segments so roll-overs and deletions are included. The figure is
// dominated by fsync, so compare runs on the same disk:
//
//	go test -run '^$' -bench AppendCommit -count 6 ./agent/buffer/ | benchstat -
func BenchmarkAppendCommit(b *testing.B) {
	for _, size := range []int{4 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("record=%dKiB", size>>10), func(b *testing.B) {
			buf, err := buffer.Open(buffer.Config{Dir: b.TempDir(), MaxFiles: 8, MaxFileSize: 1 << 20}, buffer.Settings{})
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			rec := make([]byte, size)
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := buf.Append(ctx, rec); err != nil {
					b.Fatal(err)
				}
				r, err := buf.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := buf.Commit(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
