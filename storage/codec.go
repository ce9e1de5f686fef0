package storage

import (
	"github.com/segmentio/encoding/json"
)

// Records and usage counters are JSON (readable with any bbolt tool, and
// forward compatible: unknown fields are ignored). They are decoded on every
// turn, so they go through segmentio/encoding/json, a maintained drop-in for
// encoding/json that avoids most of its reflection cost.

func decodeRecord(data []byte, r *Record) error {
	*r = Record{}
	return json.Unmarshal(data, r)
}

func decodeCounter(data []byte, c *Counter) error {
	*c = Counter{}
	return json.Unmarshal(data, c)
}

func encodeCounter(c Counter) ([]byte, error) { return json.Marshal(c) }
