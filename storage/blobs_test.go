package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openBlobs(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "blobs.db")
	}
	opts.Timeout = 200 * time.Millisecond
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// blobData returns size deterministic bytes that differ for each name.
func blobData(name string, size int) []byte {
	seed := sha256.Sum256([]byte(name))
	rng := rand.New(rand.NewChaCha8(seed))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func sumHex(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func mustPut(t *testing.T, s *Store, conv string, data []byte) string {
	t.Helper()
	ref, err := s.PutBlob(context.Background(), conv, data)
	if err != nil {
		t.Fatalf("PutBlob(%s): %v", conv, err)
	}
	return ref
}

// hasBlob reports whether Blob finds ref, checking the bytes when it does.
func hasBlob(t *testing.T, s *Store, ref string, want []byte) bool {
	t.Helper()
	got, err := s.Blob(context.Background(), ref)
	if errors.Is(err, ErrBlobNotFound) {
		return false
	}
	if err != nil {
		t.Fatalf("Blob(%s): %v", ref, err)
	}
	if want != nil && !bytes.Equal(got, want) {
		t.Fatalf("Blob(%s) returned %d different bytes, want %d", ref, len(got), len(want))
	}
	return true
}

// convRefs returns the refs conversation conv holds, oldest first.
func convRefs(t *testing.T, s *Store, conv string) []string {
	t.Helper()
	var out []string
	_ = s.db.View(func(tx *bolt.Tx) error {
		refs := tx.Bucket(bucketBlobConvs).Bucket([]byte(conv))
		if refs == nil {
			return nil
		}
		c := refs.Cursor()
		for k, v := c.Seek([]byte{blobOrder}); k != nil && k[0] == blobOrder; k, v = c.Next() {
			out = append(out, hex.EncodeToString(v[:hashLen]))
		}
		return nil
	})
	return out
}

// checkBlobInvariants verifies the blob buckets agree with each other: each
// conversation's order and index entries match and sum to its byte total,
// each blob's count is the number of conversations referencing it, and the
// blobs stored are exactly the referenced ones, with the recorded sizes.
func checkBlobInvariants(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		want := map[string]uint64{}
		sizes := map[string]uint64{}
		convs := tx.Bucket(bucketBlobConvs)
		err := convs.ForEachBucket(func(conv []byte) error {
			refs := convs.Bucket(conv)
			var total, orders, indexes uint64
			err := refs.ForEach(func(k, v []byte) error {
				switch {
				case bytes.Equal(k, keyBlobBytes):
				case k[0] == blobOrder:
					orders++
					h := string(v[:hashLen])
					size := binary.BigEndian.Uint64(v[hashLen:])
					total += size
					want[h]++
					sizes[h] = size
					if seq := refs.Get(blobKey(blobIndex, v[:hashLen])); !bytes.Equal(seq, k[1:]) {
						return fmt.Errorf("%s: index of %x is %x, want %x", conv, v[:hashLen], seq, k[1:])
					}
				case k[0] == blobIndex:
					indexes++
				default:
					return fmt.Errorf("%s: unexpected key %q", conv, k)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if orders != indexes {
				return fmt.Errorf("%s: %d order entries, %d index entries", conv, orders, indexes)
			}
			if got := getU64(refs.Get(keyBlobBytes)); got != total {
				return fmt.Errorf("%s: byte total %d, references sum to %d", conv, got, total)
			}
			return nil
		})
		if err != nil {
			return err
		}
		got := map[string]uint64{}
		_ = tx.Bucket(bucketBlobRefs).ForEach(func(k, v []byte) error { got[string(k)] = getU64(v); return nil })
		if !reflect.DeepEqual(got, want) && (len(got) > 0 || len(want) > 0) {
			return fmt.Errorf("reference counts %v, conversations reference %v", got, want)
		}
		n := 0
		blobs := tx.Bucket(bucketBlobs)
		err = blobs.ForEachBucket(func(k []byte) error {
			n++
			v := blobs.Bucket(k).Get(keyBlobData)
			if v == nil {
				sz := blobs.Bucket(k).Get(keyBlobSize)
				if len(sz) != 8 {
					return fmt.Errorf("blob %x has no data", k)
				}
				var whole []byte
				_ = blobs.Bucket(k).ForEachBucket(func(ck []byte) error {
					if ck[0] == blobChunkKey {
						whole = append(whole, blobs.Bucket(k).Bucket(ck).Get(keyBlobData)...)
					}
					return nil
				})
				if uint64(len(whole)) != getU64(sz) {
					return fmt.Errorf("blob %x: %d bytes in pieces, size says %d", k, len(whole), getU64(sz))
				}
				v = whole
			}
			if size, ok := sizes[string(k)]; !ok || size != uint64(len(v)) {
				return fmt.Errorf("blob %x (%d bytes) unreferenced or of another size (%d, %v)", k, len(v), size, ok)
			}
			return nil
		})
		if err == nil && n != len(want) {
			err = fmt.Errorf("%d blobs stored, %d referenced", n, len(want))
		}
		return err
	})
	if err != nil {
		t.Fatalf("blob buckets inconsistent: %v", err)
	}
}

func TestBlobRoundTrip(t *testing.T) {
	s := openBlobs(t, "", Options{NoSync: true})
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", []byte{}},
		{"small", []byte("a tiny png")},
		{"one page", blobData("page", 4096)},
		{"large", blobData("large", 3<<20+17)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := mustPut(t, s, "slack/T1/C1/t", tt.data)
			if ref != sumHex(tt.data) {
				t.Fatalf("ref = %s, want hex sha256 %s", ref, sumHex(tt.data))
			}
			got, err := s.Blob(context.Background(), ref)
			if err != nil || !bytes.Equal(got, tt.data) || got == nil {
				t.Fatalf("Blob = %d bytes (nil %v), %v; want %d bytes", len(got), got == nil, err, len(tt.data))
			}
			got2, _ := s.Blob(context.Background(), ref)
			if len(got) > 0 {
				got[0] ^= 0xff // a copy: must not change the store or another read
				if got2[0] == got[0] {
					t.Fatal("two Blob calls share memory")
				}
			}
		})
	}
	checkBlobInvariants(t, s)

	for _, ref := range []string{"", "not hex", sumHex([]byte("never stored")), "abcd"} {
		if _, err := s.Blob(context.Background(), ref); !errors.Is(err, ErrBlobNotFound) {
			t.Errorf("Blob(%q) = %v, want ErrBlobNotFound", ref, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.PutBlob(ctx, "c", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("PutBlob with a cancelled context: %v", err)
	}
	if _, err := s.Blob(ctx, sumHex([]byte("x"))); !errors.Is(err, context.Canceled) {
		t.Errorf("Blob with a cancelled context: %v", err)
	}
}

func TestBlobDedupAndRefcount(t *testing.T) {
	type op struct {
		do   string // "put" or "reset"
		conv string
		blob string // name of the blob put
	}
	tests := []struct {
		name      string
		ops       []op
		wantFound map[string]bool
		wantRefs  map[string][]string // conversation -> blob names, oldest first
	}{
		{
			name:      "same bytes in two conversations are stored once",
			ops:       []op{{"put", "A", "x"}, {"put", "B", "x"}},
			wantFound: map[string]bool{"x": true},
			wantRefs:  map[string][]string{"A": {"x"}, "B": {"x"}},
		},
		{
			name:      "putting twice in one conversation keeps one reference",
			ops:       []op{{"put", "A", "x"}, {"put", "A", "y"}, {"put", "A", "x"}},
			wantFound: map[string]bool{"x": true, "y": true},
			wantRefs:  map[string][]string{"A": {"y", "x"}},
		},
		{
			name:      "reset keeps a blob another conversation references",
			ops:       []op{{"put", "A", "x"}, {"put", "B", "x"}, {"put", "A", "y"}, {"reset", "A", ""}},
			wantFound: map[string]bool{"x": true, "y": false},
			wantRefs:  map[string][]string{"A": nil, "B": {"x"}},
		},
		{
			name:      "a blob is deleted when its last conversation drops it",
			ops:       []op{{"put", "A", "x"}, {"put", "B", "x"}, {"reset", "A", ""}, {"reset", "B", ""}},
			wantFound: map[string]bool{"x": false},
			wantRefs:  map[string][]string{"A": nil, "B": nil},
		},
		{
			name:      "put after reset",
			ops:       []op{{"put", "A", "x"}, {"reset", "A", ""}, {"put", "A", "x"}},
			wantFound: map[string]bool{"x": true},
			wantRefs:  map[string][]string{"A": {"x"}},
		},
		{
			name:      "reset of a conversation without blobs",
			ops:       []op{{"put", "A", "x"}, {"reset", "B", ""}},
			wantFound: map[string]bool{"x": true},
			wantRefs:  map[string][]string{"A": {"x"}, "B": nil},
		},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openBlobs(t, "", Options{NoSync: true})
			refs := map[string]string{}
			for _, o := range tt.ops {
				switch o.do {
				case "put":
					refs[o.blob] = mustPut(t, s, o.conv, blobData(o.blob, 1000))
				case "reset":
					if err := s.ResetConversation(ctx, o.conv); err != nil {
						t.Fatal(err)
					}
				}
				checkBlobInvariants(t, s)
			}
			for name, want := range tt.wantFound {
				if got := hasBlob(t, s, refs[name], blobData(name, 1000)); got != want {
					t.Errorf("blob %s found = %v, want %v", name, got, want)
				}
			}
			for conv, names := range tt.wantRefs {
				var want []string
				for _, n := range names {
					want = append(want, refs[n])
				}
				if got := convRefs(t, s, conv); !reflect.DeepEqual(got, want) {
					t.Errorf("conversation %s references %v, want %v (%v)", conv, got, want, names)
				}
			}
		})
	}
}

func TestBlobCapEviction(t *testing.T) {
	type put struct {
		conv, blob string
		size       int
	}
	tests := []struct {
		name string
		cap  int64
		puts []put
		want map[string][]string // conversation -> blob names it still references, oldest first
		gone []string            // blobs Blob no longer finds
	}{
		{
			name: "within the cap",
			cap:  100,
			puts: []put{{"A", "a", 40}, {"A", "b", 40}},
			want: map[string][]string{"A": {"a", "b"}},
		},
		{
			name: "exactly the cap",
			cap:  100,
			puts: []put{{"A", "a", 50}, {"A", "b", 50}},
			want: map[string][]string{"A": {"a", "b"}},
		},
		{
			name: "oldest is dropped first",
			cap:  100,
			puts: []put{{"A", "a", 40}, {"A", "b", 40}, {"A", "c", 40}},
			want: map[string][]string{"A": {"b", "c"}},
			gone: []string{"a"},
		},
		{
			name: "several are dropped for a large one",
			cap:  100,
			puts: []put{{"A", "a", 30}, {"A", "b", 30}, {"A", "c", 30}, {"A", "d", 90}},
			want: map[string][]string{"A": {"d"}},
			gone: []string{"a", "b", "c"},
		},
		{
			name: "the newest is kept even alone over the cap",
			cap:  100,
			puts: []put{{"A", "a", 40}, {"A", "b", 150}},
			want: map[string][]string{"A": {"b"}},
			gone: []string{"a"},
		},
		{
			name: "putting again makes a blob the newest",
			cap:  100,
			puts: []put{{"A", "a", 40}, {"A", "b", 40}, {"A", "a", 40}, {"A", "c", 40}},
			want: map[string][]string{"A": {"a", "c"}},
			gone: []string{"b"},
		},
		{
			name: "the cap is per conversation",
			cap:  100,
			puts: []put{{"A", "a", 60}, {"B", "b", 60}, {"A", "c", 30}, {"B", "d", 30}},
			want: map[string][]string{"A": {"a", "c"}, "B": {"b", "d"}},
		},
		{
			name: "a blob dropped by one conversation stays for another",
			cap:  100,
			puts: []put{{"A", "a", 60}, {"B", "a", 60}, {"A", "c", 60}},
			want: map[string][]string{"A": {"c"}, "B": {"a"}},
		},
		{
			name: "no cap",
			cap:  -1,
			puts: []put{{"A", "a", 4000}, {"A", "b", 4000}, {"A", "c", 4000}},
			want: map[string][]string{"A": {"a", "b", "c"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openBlobs(t, "", Options{NoSync: true, MaxConversationBlobBytes: tt.cap})
			refs, sizes := map[string]string{}, map[string]int{}
			for _, p := range tt.puts {
				refs[p.blob] = mustPut(t, s, p.conv, blobData(p.blob, p.size))
				sizes[p.blob] = p.size
				checkBlobInvariants(t, s)
			}
			for conv, names := range tt.want {
				var want []string
				for _, n := range names {
					want = append(want, refs[n])
					if !hasBlob(t, s, refs[n], blobData(n, sizes[n])) {
						t.Errorf("blob %s not found", n)
					}
				}
				if got := convRefs(t, s, conv); !reflect.DeepEqual(got, want) {
					t.Errorf("conversation %s references %v, want %v (%v)", conv, got, want, names)
				}
			}
			for _, n := range tt.gone {
				if hasBlob(t, s, refs[n], nil) {
					t.Errorf("blob %s was not dropped", n)
				}
			}
		})
	}
}

func TestDefaultBlobCap(t *testing.T) {
	s := openBlobs(t, "", Options{NoSync: true})
	if s.maxConvBlob != DefaultMaxConversationBlobBytes || DefaultMaxConversationBlobBytes != 64<<20 {
		t.Fatalf("default cap = %d", s.maxConvBlob)
	}
}

// attach returns an attachment record for data put in conv.
func attach(t *testing.T, s *Store, conv, name string, data []byte) AttachmentRef {
	t.Helper()
	return AttachmentRef{Name: name, MIMEType: "image/png", Size: int64(len(data)), Ref: mustPut(t, s, conv, data)}
}

func TestForgetUserDropsAttachments(t *testing.T) {
	ctx := context.Background()
	const (
		c1 = "slack/T1/C1/t1"
		c2 = "slack/T1/C2/t2"
		c3 = "slack/T1/C3/t3"
	)
	s := openBlobs(t, "", Options{NoSync: true})
	data := map[string][]byte{}
	for _, n := range []string{"mine", "generated", "theirs", "same", "shared", "otherconv", "evicted"} {
		data[n] = blobData(n, 500)
	}
	// C1: U1's image and the image the bot generated in reply; U2's image;
	// an image both users posted; U1's image that C2 also references.
	u1 := Record{Role: "user", Author: "U1", Text: "look", Attachments: []AttachmentRef{
		attach(t, s, c1, "mine.png", data["mine"]), attach(t, s, c1, "same.png", data["same"]), attach(t, s, c1, "shared.png", data["shared"]),
		{Name: "not kept.bin", MIMEType: "application/octet-stream", Size: 1 << 40}}}
	a1 := Record{Role: "assistant", Text: "here", Attachments: []AttachmentRef{attach(t, s, c1, "gen.png", data["generated"])}}
	u2 := Record{Role: "user", Author: "U2", Text: "mine too", Attachments: []AttachmentRef{
		attach(t, s, c1, "theirs.png", data["theirs"]), attach(t, s, c1, "same.png", data["same"])}}
	a2 := Record{Role: "assistant", Text: "ok"}
	if err := s.AppendTurn(ctx, c1, 0, u1, a1); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendTurn(ctx, c1, 0, u2, a2); err != nil {
		t.Fatal(err)
	}
	// C2 (U2) references the bytes of U1's "shared" image.
	if err := s.AppendTurn(ctx, c2, 0, Record{Role: "user", Author: "U2", Attachments: []AttachmentRef{attach(t, s, c2, "s.png", data["shared"])}}); err != nil {
		t.Fatal(err)
	}
	// C3 is outside the prefix forgotten: U1's image there stays.
	if err := s.AppendTurn(ctx, c3, 0, Record{Role: "user", Author: "U1", Attachments: []AttachmentRef{attach(t, s, c3, "o.png", data["otherconv"])}}); err != nil {
		t.Fatal(err)
	}
	checkBlobInvariants(t, s)

	n, err := s.ForgetUser(ctx, "slack/T1/C1/", "U1")
	if err != nil || n != 2 {
		t.Fatalf("ForgetUser = %d, %v", n, err)
	}
	checkBlobInvariants(t, s)
	tests := []struct {
		blob  string
		found bool
		inC1  bool
	}{
		{"mine", false, false},
		{"generated", false, false}, // the deleted assistant reply's
		{"theirs", true, true},
		{"same", true, true},    // U2's record in C1 still references it
		{"shared", true, false}, // C1 drops its reference, C2 keeps its own
		{"otherconv", true, false},
	}
	c1refs := convRefs(t, s, c1)
	for _, tt := range tests {
		ref := sumHex(data[tt.blob])
		if got := hasBlob(t, s, ref, data[tt.blob]); got != tt.found {
			t.Errorf("blob %s found = %v, want %v", tt.blob, got, tt.found)
		}
		inC1 := false
		for _, r := range c1refs {
			inC1 = inC1 || r == ref
		}
		if inC1 != tt.inC1 {
			t.Errorf("C1 references %s = %v, want %v", tt.blob, inC1, tt.inC1)
		}
	}
	if got := convRefs(t, s, c2); len(got) != 1 || got[0] != sumHex(data["shared"]) {
		t.Errorf("C2 references %v", got)
	}

	// Forgetting U2 everywhere under slack/T1/ now drops the rest of C1 and C2.
	if n, err := s.ForgetUser(ctx, "slack/T1/", "U2"); err != nil || n != 3 {
		t.Fatalf("ForgetUser U2 = %d, %v", n, err)
	}
	checkBlobInvariants(t, s)
	for _, b := range []string{"theirs", "same", "shared"} {
		if hasBlob(t, s, sumHex(data[b]), nil) {
			t.Errorf("blob %s survived forgetting every record that had it", b)
		}
	}
	if !hasBlob(t, s, sumHex(data["otherconv"]), data["otherconv"]) {
		t.Error("U1's C3 blob lost")
	}
}

func TestBlobsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "reopen.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	blobs := [][]byte{{}, blobData("a", 400), blobData("b", 400), blobData("c", 64<<10)}
	var refs []string
	for i, b := range blobs {
		ref, err := s.PutBlob(ctx, fmt.Sprint("conv", i%2), b)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openBlobs(t, path, Options{MaxConversationBlobBytes: 1000})
	checkBlobInvariants(t, s)
	for i, b := range blobs {
		if !hasBlob(t, s, refs[i], b) {
			t.Errorf("blob %d lost on reopen", i)
		}
	}
	// The reopened store goes on from the stored order and byte total:
	// conv0 holds "" (0 bytes) and b (400); d (900) pushes both out.
	d := mustPut(t, s, "conv0", blobData("d", 900))
	if got := convRefs(t, s, "conv0"); !reflect.DeepEqual(got, []string{d}) {
		t.Errorf("conv0 after a put over the cap references %v, want only d", got)
	}
	if hasBlob(t, s, refs[0], nil) || hasBlob(t, s, refs[2], nil) {
		t.Error("conv0's old blobs were not dropped")
	}
	checkBlobInvariants(t, s)
}

func TestOldRecordsDecode(t *testing.T) {
	ctx := context.Background()
	s := openBlobs(t, "", Options{NoSync: true})
	// Exactly what a build before attachments wrote.
	old := []string{
		`{"role":"user","text":"hi","author":"U1","time":"2026-01-02T03:04:05Z"}`,
		`{"role":"assistant","text":"hello","time":"2026-01-02T03:04:06Z","status":"ok","model":"m","input_tokens":3}`,
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		cb, err := tx.Bucket(bucketConvs).CreateBucket([]byte("old"))
		if err != nil {
			return err
		}
		if err := cb.Put(keyGen, u64(0)); err != nil {
			return err
		}
		msgs, err := cb.CreateBucket(genKey(0))
		if err != nil {
			return err
		}
		for _, v := range old {
			seq, _ := msgs.NextSequence()
			if err := msgs.Put(u64(seq), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, recs, err := s.History(ctx, "old", 10)
	want := []Record{
		{Role: "user", Text: "hi", Author: "U1", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{Role: "assistant", Text: "hello", Time: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), Status: StatusOK, Model: "m", InputTokens: 3},
	}
	if err != nil || !reflect.DeepEqual(recs, want) {
		t.Fatalf("History of old records = %+v, %v; want %+v", recs, err, want)
	}
	// ForgetUser reads them too.
	if n, err := s.ForgetUser(ctx, "old", "U1"); err != nil || n != 2 {
		t.Fatalf("ForgetUser of old records = %d, %v", n, err)
	}
}

func TestAttachmentsRoundTripHistory(t *testing.T) {
	ctx := context.Background()
	for _, cache := range []int64{-1, 0} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) {
			s := openBlobs(t, "", Options{NoSync: true, HistoryCacheBytes: cache})
			at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
			img := blobData("img", 300)
			turns := [][]Record{
				{
					{Role: "user", Text: "what is this?", Author: "U1", Time: at, Attachments: []AttachmentRef{
						attach(t, s, "k", "cat.png", img),
						{Name: "huge.mov", MIMEType: "video/quicktime", Size: 3 << 30}, // bytes not kept
					}},
					{Role: "assistant", Text: "a cat", Time: at, Status: StatusOK},
				},
				{
					{Role: "user", Text: "draw it", Author: "U1", Time: at},
					{Role: "assistant", Text: "here", Time: at, Status: StatusOK, Attachments: []AttachmentRef{
						{Name: "drawing.png", MIMEType: "image/png", Size: 12, Ref: sumHex([]byte("not a real one"))}}},
				},
				{
					{Role: "user", Text: "", Author: "U2", Time: at, Attachments: []AttachmentRef{{Name: "", MIMEType: "", Size: 0}}},
				},
			}
			var want []Record
			for i, turn := range turns {
				if err := s.AppendTurn(ctx, "k", 0, turn...); err != nil {
					t.Fatal(err)
				}
				want = append(want, turn...)
				for range 2 { // cold, then (with the cache) warm
					_, got, err := s.History(ctx, "k", 10)
					if err != nil || !reflect.DeepEqual(got, want) {
						t.Fatalf("turn %d: History = %+v, %v\nwant %+v", i, got, err, want)
					}
					// The caller's copy shares nothing with the cache.
					got[0].Attachments[0].Name = "mutated"
					got[0].Attachments = append(got[0].Attachments[:1], AttachmentRef{Name: "appended"})
				}
			}
			_, got, _ := s.History(ctx, "k", 10)
			if b, err := s.Blob(ctx, got[0].Attachments[0].Ref); err != nil || !bytes.Equal(b, img) {
				t.Fatalf("follow-up turn: Blob of the first image = %d bytes, %v", len(b), err)
			}
		})
	}
}

// TestBlobsConcurrent puts, resets and forgets from several goroutines
// (run with -race) and then checks the buckets agree.
func TestBlobsConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openBlobs(t, "", Options{NoSync: true, MaxConversationBlobBytes: 4000})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 60 {
				conv := fmt.Sprintf("slack/T1/C%d/t", rng.IntN(3))
				switch op := rng.IntN(10); {
				case op < 7:
					data := blobData(fmt.Sprint("b", rng.IntN(12)), 500+rng.IntN(1500))
					ref, err := s.PutBlob(ctx, conv, data)
					if err != nil {
						t.Error(err)
						return
					}
					rec := Record{Role: "user", Author: fmt.Sprint("U", w), Text: fmt.Sprint(i), Attachments: []AttachmentRef{{Name: "x", Size: int64(len(data)), Ref: ref}}}
					if err := s.AppendTurn(ctx, conv, 0, rec, Record{Role: "assistant", Text: "ok"}); err != nil {
						t.Error(err)
						return
					}
				case op < 9:
					if err := s.ResetConversation(ctx, conv); err != nil {
						t.Error(err)
						return
					}
				default:
					if _, err := s.ForgetUser(ctx, "slack/T1/", fmt.Sprint("U", w)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	checkBlobInvariants(t, s)
}

// TestIncompleteBlobIsDroppedAtOpen: pieces of a blob whose write never
// completed (a crash before its reference) are neither readable nor kept.
func TestIncompleteBlobIsDroppedAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("piece"), blobChunk) // 5 pieces
	sum := sha256.Sum256(data)
	if err := s.writeBlobChunks(context.Background(), sum[:], data); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Blob(context.Background(), hex.EncodeToString(sum[:])); !errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("an incomplete blob is readable: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketBlobs).Bucket(sum[:]) != nil {
			t.Error("the pieces survived a restart")
		}
		return nil
	})
	// A complete put of the same bytes reads back whole.
	ref, err := s.PutBlob(context.Background(), "c", data)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Blob(context.Background(), ref); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
}
