package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// realDB writes a database with enough settings to span many pages and
// returns its path, its bytes and the size its data needs (the file may be
// longer: bbolt grows it ahead).
func realDB(t *testing.T) (string, []byte, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "real.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		p := strings.Repeat("prompt ", 20)
		if err := s.UpdateSettings(context.Background(), fmt.Sprintf("settings-key-%05d", i), func(st *Settings) { st.SystemPrompt = &p }); err != nil {
			t.Fatal(err)
		}
	}
	var need int64
	if err := s.db.View(func(tx *bolt.Tx) error { need = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data, int(need)
}

// TestOpenRefusesBadFiles: an existing file that is empty, random or a
// truncated copy of a real database is refused with an error naming the
// file and saying what to do — never a panic, never an empty database over
// it — while a missing file is created.
func TestOpenRefusesBadFiles(t *testing.T) {
	_, real, need := realDB(t)
	random := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"zero bytes", []byte{}, "is empty (0 bytes)"},
		{"random bytes", random, "is corrupted"},
		{"a few random bytes", random[:100], "is corrupted"},
		{"truncated to one page", real[:4096], "is corrupted"},
		{"truncated to two pages", real[:8192], "corrupted"},
		{"truncated to half", real[:need/2], ""},
		{"last page of data cut off", real[:need-4096], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bot.db")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, Options{NoSync: true})
			if err == nil {
				s.Close()
				t.Fatal("Open accepted the file")
			}
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Path != path {
				t.Fatalf("error %v (%T) is not a CorruptError for %s", err, err, path)
			}
			for _, w := range []string{path, "restore a backup", "cometbot doctor", tt.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, tt.data) {
				t.Error("the refused file was modified")
			}
			// The lock was released: the file can be replaced and opened.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			s, err = Open(path, Options{NoSync: true, Timeout: 200_000_000})
			if err != nil {
				t.Fatalf("a missing file must be created: %v", err)
			}
			s.Close()
		})
	}
}

// TestCheckFindsDamagedPages: Check passes on a sound database and reports a
// damaged leaf page (by path) without crashing.
func TestCheckFindsDamagedPages(t *testing.T) {
	path, data, _ := realDB(t)
	s := openTest(t, path)
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check on a sound database: %v", err)
	}
	s.Close()

	// Find a leaf page of the settings bucket (not a bucket's root, so Open
	// still works) and mark it with an invalid page type.
	const pageSize = 4096
	damaged := -1
	for off := 2 * pageSize; off+pageSize <= len(data); off += pageSize {
		id := binary.LittleEndian.Uint64(data[off:])
		flags := binary.LittleEndian.Uint16(data[off+8:])
		count := binary.LittleEndian.Uint16(data[off+10:])
		if id != uint64(off/pageSize) || flags != 0x02 || count == 0 {
			continue
		}
		// First leaf element: flags, pos, ksize, vsize (uint32 each); pos is
		// relative to the element.
		elem := off + 16
		pos := int(binary.LittleEndian.Uint32(data[elem+4:]))
		ksize := int(binary.LittleEndian.Uint32(data[elem+8:]))
		if k := data[elem+pos : elem+pos+ksize]; bytes.HasPrefix(k, []byte("settings-key-01")) {
			damaged = off
			break
		}
	}
	if damaged < 0 {
		t.Fatal("no leaf page of the settings bucket found")
	}
	binary.LittleEndian.PutUint16(data[damaged+8:], 0x40) // an unknown page type
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	err := s.Check(context.Background())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Check on a damaged database = %v", err)
	}
	t.Logf("check: %v", err)
}

func TestRestoreAdviceNamesTheFile(t *testing.T) {
	got := RestoreAdvice("/data/cometbot.db")
	for _, w := range []string{"backup", "/data/cometbot.db", "mv /data/cometbot.db /data/cometbot.db.corrupt", "empty"} {
		if !strings.Contains(got, w) {
			t.Errorf("advice %q lacks %q", got, w)
		}
	}
}

func TestProbeLeavesNoBallast(t *testing.T) {
	s := openTest(t, "")
	if err := s.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyProbe); v != nil {
			return fmt.Errorf("probe left %d bytes behind", len(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
