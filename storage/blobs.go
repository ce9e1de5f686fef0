package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// DefaultMaxConversationBlobBytes is the default cap on the attachment bytes
// one conversation keeps in the blob store (Options.MaxConversationBlobBytes).
const DefaultMaxConversationBlobBytes = 64 << 20

// blobChunk is the size of the pieces a blob is written in, each in a
// transaction of its own: bbolt builds a commit's dirty pages in one heap
// buffer, so a 20 MiB blob written whole would cost a second 20 MiB while
// the turn still holds the original.
const blobChunk = 1 << 20

var (
	keyBlobData  = []byte("data") // the bytes of a blob written whole (before chunking)
	keyBlobSize  = []byte("size") // uint64 total size: the blob is complete (written with its first reference)
	blobChunkKey = byte('c')      // 'c'<index uint32>/d -> one piece of the bytes, in order (a bucket each, see putChunk)

	// Keys inside a conversation's bucket under blob_convs.
	keyBlobBytes = []byte("bytes") // total bytes the conversation references
	blobOrder    = byte('n')       // 'n'<seq> -> sha256|size, oldest first
	blobIndex    = byte('h')       // 'h'<sha256> -> seq
)

const hashLen = sha256.Size

// PutBlob stores data in the blob store under its sha256 (once, however many
// conversations put the same bytes) and records that conversation conv (the
// conversation key, as for History) references it. It returns the content
// address, hex sha256, for AttachmentRef.Ref.
//
// A conversation's references are kept in the order they were last put;
// putting bytes the conversation already references makes them its newest.
// When the conversation then references more than
// Options.MaxConversationBlobBytes, its oldest references are dropped until it
// is within the cap (never the one just put, even if it alone exceeds the
// cap), and blobs that no conversation references any more are deleted.
//
// data is not copied by the store before the commit, so the caller must not
// modify it until PutBlob returns. The write is a transaction of its own
// (shared, under load, with concurrent writes by group commit).
func (s *Store) PutBlob(ctx context.Context, conv string, data []byte) (string, error) {
	if err := ctxErr(ctx); err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	hash := sum[:]
	ckey := []byte(conv)
	size := uint64(len(data))
	if err := s.writeBlobChunks(ctx, hash, data); err != nil {
		return "", fmt.Errorf("storage: put blob: %w", err)
	}
	err := s.batch(func(tx *bolt.Tx) error {
		refs, err := tx.Bucket(bucketBlobConvs).CreateBucketIfNotExists(ckey)
		if err != nil {
			return err
		}
		total := getU64(refs.Get(keyBlobBytes))
		if old := refs.Get(blobKey(blobIndex, hash)); len(old) == 8 {
			// Already referenced: move the reference to the newest place.
			if err := refs.Delete(blobKey(blobOrder, old)); err != nil {
				return err
			}
		} else {
			if err := addBlobRef(tx, hash, data); err != nil {
				return err
			}
			total += size
		}
		seq, err := refs.NextSequence()
		if err != nil {
			return err
		}
		if err := refs.Put(blobKey(blobOrder, u64(seq)), append(hash[:hashLen:hashLen], u64(size)...)); err != nil {
			return err
		}
		if err := refs.Put(blobKey(blobIndex, hash), u64(seq)); err != nil {
			return err
		}
		if limit := s.maxConvBlob; limit > 0 && total > uint64(limit) {
			// Drop the oldest references (never the newest, just put) until
			// the conversation is within the cap.
			type victim struct{ key, hash []byte }
			var drop []victim
			c := refs.Cursor()
			for k, v := c.Seek([]byte{blobOrder}); k != nil && k[0] == blobOrder && total > uint64(limit); k, v = c.Next() {
				if len(k) != 9 || len(v) != hashLen+8 || binary.BigEndian.Uint64(k[1:]) == seq {
					continue
				}
				drop = append(drop, victim{bytes.Clone(k), bytes.Clone(v[:hashLen])})
				total -= min(total, binary.BigEndian.Uint64(v[hashLen:]))
			}
			for _, d := range drop {
				if err := refs.Delete(d.key); err != nil {
					return err
				}
				if err := refs.Delete(blobKey(blobIndex, d.hash)); err != nil {
					return err
				}
				if err := releaseBlobRef(tx, d.hash); err != nil {
					return err
				}
			}
		}
		return refs.Put(keyBlobBytes, u64(total))
	})
	if err != nil {
		return "", fmt.Errorf("storage: put blob: %w", err)
	}
	return hex.EncodeToString(hash), nil
}

// Blob returns a copy of the bytes stored under ref (hex sha256, as returned
// by PutBlob), or an error wrapping ErrBlobNotFound when the store does not
// hold them. Blobs are content-addressed and shared: bytes that one
// conversation dropped are still found while another references them.
func (s *Store) Blob(ctx context.Context, ref string) ([]byte, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	hash, ok := refHash(ref)
	if !ok {
		return nil, fmt.Errorf("storage: blob %q: %w", ref, ErrBlobNotFound)
	}
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlobs).Bucket(hash)
		if b == nil {
			return ErrBlobNotFound
		}
		if v := b.Get(keyBlobData); v != nil {
			out = make([]byte, len(v)) // non-nil even for empty blobs
			copy(out, v)
			return nil
		}
		sz := b.Get(keyBlobSize)
		if len(sz) != 8 {
			return ErrBlobNotFound // pieces of a write that never completed
		}
		out = make([]byte, 0, binary.BigEndian.Uint64(sz))
		c := b.Cursor()
		for k, _ := c.Seek([]byte{blobChunkKey}); k != nil && k[0] == blobChunkKey; k, _ = c.Next() {
			if cb := b.Bucket(k); cb != nil {
				out = append(out, cb.Get(keyBlobData)...)
			}
		}
		if uint64(len(out)) != binary.BigEndian.Uint64(sz) {
			return fmt.Errorf("blob %x: %d of %d bytes stored", hash, len(out), binary.BigEndian.Uint64(sz))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: blob %s: %w", ref, err)
	}
	return out, nil
}

// addBlobRef counts one more conversation referencing hash, storing data if
// no conversation did.
func addBlobRef(tx *bolt.Tx, hash, data []byte) error {
	rc := tx.Bucket(bucketBlobRefs)
	n := getU64(rc.Get(hash))
	if err := completeBlob(tx, hash, data); err != nil {
		return err
	}
	return rc.Put(hash, u64(n+1))
}

// writeBlobChunks writes data's pieces into the blob's bucket, each piece
// in its own transaction, unless the blob is already complete. The blob is
// not readable (and not referenced) until PutBlob's own transaction marks
// it complete; pieces of a write that never completed are removed at Open.
func (s *Store) writeBlobChunks(ctx context.Context, hash, data []byte) error {
	var done bool
	if err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlobs).Bucket(hash)
		done = b != nil && (b.Get(keyBlobData) != nil || b.Get(keyBlobSize) != nil)
		return nil
	}); err != nil || done {
		return err
	}
	for i := 0; i*blobChunk < len(data); i++ {
		if err := ctxErr(ctx); err != nil {
			return err
		}
		piece := data[i*blobChunk : min(len(data), (i+1)*blobChunk)]
		if err := s.batch(func(tx *bolt.Tx) error {
			b, err := tx.Bucket(bucketBlobs).CreateBucketIfNotExists(hash)
			if err != nil {
				return err
			}
			if b.Get(keyBlobSize) != nil || b.Get(keyBlobData) != nil {
				return nil // completed meanwhile by a concurrent put
			}
			return putChunk(b, i, piece)
		}); err != nil {
			return err
		}
	}
	return nil
}

// putChunk stores piece i in a bucket of its own: values sharing a leaf
// are all rewritten when one is added, so pieces side by side in one leaf
// would be copied again by every later piece's transaction.
func putChunk(b *bolt.Bucket, i int, piece []byte) error {
	cb, err := b.CreateBucketIfNotExists(chunkKey(i))
	if err != nil {
		return err
	}
	return cb.Put(keyBlobData, piece)
}

func chunkKey(i int) []byte {
	k := make([]byte, 5)
	k[0] = blobChunkKey
	binary.BigEndian.PutUint32(k[1:], uint32(i))
	return k
}

// completeBlob marks the blob complete inside the reference's transaction,
// writing any piece that is missing (a concurrent release may have deleted
// the pieces since writeBlobChunks).
func completeBlob(tx *bolt.Tx, hash, data []byte) error {
	// A bucket of its own: bbolt rewrites a whole leaf (every value in it)
	// when one of its values changes, so blobs that shared a leaf would be
	// copied again on each put or delete of a neighbour.
	b, err := tx.Bucket(bucketBlobs).CreateBucketIfNotExists(hash)
	if err != nil {
		return err
	}
	if b.Get(keyBlobData) != nil || b.Get(keyBlobSize) != nil {
		return nil
	}
	for i := 0; i*blobChunk < len(data); i++ {
		if b.Bucket(chunkKey(i)) == nil {
			if err := putChunk(b, i, data[i*blobChunk:min(len(data), (i+1)*blobChunk)]); err != nil {
				return err
			}
		}
	}
	return b.Put(keyBlobSize, u64(uint64(len(data))))
}

// dropIncompleteBlobs removes the pieces of blob writes that never
// completed (a crash between writeBlobChunks and the reference).
func dropIncompleteBlobs(tx *bolt.Tx) error {
	blobs := tx.Bucket(bucketBlobs)
	if blobs == nil {
		return nil
	}
	var partial [][]byte
	if err := blobs.ForEachBucket(func(k []byte) error {
		b := blobs.Bucket(k)
		if b.Get(keyBlobData) == nil && b.Get(keyBlobSize) == nil {
			partial = append(partial, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range partial {
		if err := blobs.DeleteBucket(k); err != nil {
			return err
		}
	}
	return nil
}

// releaseBlobRef counts one conversation fewer referencing hash, deleting
// the blob when none is left.
func releaseBlobRef(tx *bolt.Tx, hash []byte) error {
	rc := tx.Bucket(bucketBlobRefs)
	if n := getU64(rc.Get(hash)); n > 1 {
		return rc.Put(hash, u64(n-1))
	}
	if err := rc.Delete(hash); err != nil {
		return err
	}
	if err := tx.Bucket(bucketBlobs).DeleteBucket(hash); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
		return err
	}
	return nil
}

// dropConvBlobs drops every blob reference of conversation conv.
func dropConvBlobs(tx *bolt.Tx, conv []byte) error {
	convs := tx.Bucket(bucketBlobConvs)
	refs := convs.Bucket(conv)
	if refs == nil {
		return nil
	}
	var hashes [][]byte
	c := refs.Cursor()
	for k, v := c.Seek([]byte{blobOrder}); k != nil && k[0] == blobOrder; k, v = c.Next() {
		if len(v) == hashLen+8 {
			hashes = append(hashes, bytes.Clone(v[:hashLen]))
		}
	}
	if err := convs.DeleteBucket(conv); err != nil {
		return err
	}
	for _, h := range hashes {
		if err := releaseBlobRef(tx, h); err != nil {
			return err
		}
	}
	return nil
}

// dropConvBlob drops conversation conv's reference to hash, if it has one.
func dropConvBlob(tx *bolt.Tx, conv, hash []byte) error {
	refs := tx.Bucket(bucketBlobConvs).Bucket(conv)
	if refs == nil {
		return nil
	}
	ik := blobKey(blobIndex, hash)
	seq := refs.Get(ik)
	if len(seq) != 8 {
		return nil
	}
	ok := blobKey(blobOrder, seq)
	var size uint64
	if v := refs.Get(ok); len(v) == hashLen+8 {
		size = binary.BigEndian.Uint64(v[hashLen:])
	}
	if err := refs.Delete(ok); err != nil {
		return err
	}
	if err := refs.Delete(ik); err != nil {
		return err
	}
	total := getU64(refs.Get(keyBlobBytes))
	if err := refs.Put(keyBlobBytes, u64(total-min(total, size))); err != nil {
		return err
	}
	return releaseBlobRef(tx, hash)
}

// blobKey returns prefix followed by a copy of b.
func blobKey(prefix byte, b []byte) []byte {
	k := make([]byte, 1+len(b))
	k[0] = prefix
	copy(k[1:], b)
	return k
}

// refHash decodes an AttachmentRef.Ref; ok is false for an empty or invalid one.
func refHash(ref string) ([]byte, bool) {
	if len(ref) != 2*hashLen {
		return nil, false
	}
	h, err := hex.DecodeString(ref)
	return h, err == nil
}

func getU64(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}
