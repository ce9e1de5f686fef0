package storage

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"
)

// BenchmarkPutBlob puts a 20 MiB attachment into one conversation, with the
// default 64 MiB cap (so from the fourth put on, each put also evicts and
// deletes the oldest blob). "new" puts different bytes every time; "dup"
// puts bytes the store already holds (hashing and a small write). B/op is
// what the store allocates per put: bbolt copies the value once, into its
// page buffer, at commit; the store adds no copy of its own.
//
//	go test -run '^$' -bench PutBlob -benchmem ./storage
func BenchmarkPutBlob(b *testing.B) {
	const size = 20 << 20
	ctx := context.Background()
	for _, nosync := range []bool{true, false} {
		for _, mode := range []string{"new", "dup"} {
			b.Run(syncName(nosync)+"/"+mode, func(b *testing.B) {
				s := openBench(b, filepath.Join(b.TempDir(), "blobs.db"), nosync)
				data := make([]byte, size)
				for i := range data {
					data[i] = byte(i * 7)
				}
				if _, err := s.PutBlob(ctx, "slack/T1/C1/1", data); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(size)
				b.ReportAllocs()
				i := uint64(0)
				for b.Loop() {
					if mode == "new" {
						i++
						binary.BigEndian.PutUint64(data, i)
					}
					if _, err := s.PutBlob(ctx, "slack/T1/C1/1", data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkBlob reads a 20 MiB attachment back (one copy out of the
// read transaction).
func BenchmarkBlob(b *testing.B) {
	ctx := context.Background()
	s := openBench(b, filepath.Join(b.TempDir(), "blobs.db"), true)
	data := make([]byte, 20<<20)
	ref, err := s.PutBlob(ctx, "c", data)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Blob(ctx, ref); err != nil {
			b.Fatal(err)
		}
	}
}
