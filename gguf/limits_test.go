package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kvFile encodes a header whose pairs are given as raw type+value bytes.
func kvFile(kvs ...[2]string) []byte {
	b := []byte(Magic)
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = binary.LittleEndian.AppendUint64(b, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(kvs)))
	for _, kv := range kvs {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(kv[0])))
		b = append(b, kv[0]...)
		b = append(b, kv[1]...)
	}
	return b
}

func stringValue(s string) string {
	b := binary.LittleEndian.AppendUint32(nil, uint32(TypeString))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return string(append(b, s...))
}

func uint32Array(n int) string {
	b := binary.LittleEndian.AppendUint32(nil, uint32(TypeArray))
	b = binary.LittleEndian.AppendUint32(b, uint32(TypeUint32))
	b = binary.LittleEndian.AppendUint64(b, uint64(n))
	return string(append(b, make([]byte, 4*n)...))
}

func readWithLimits(data []byte, lim limits) (*Header, error) {
	return newDecoder(bytes.NewReader(data), lim).header(Options{})
}

func TestRead_RetainedBudget(t *testing.T) {
	value := strings.Repeat("v", 1000)
	// Room for two keys with their values and three more bare keys.
	budget := 2*(kvCost+2+1000) + 3*(kvCost+2)

	t.Run("values past the budget are not kept", func(t *testing.T) {
		data := kvFile(
			[2]string{"k0", stringValue(value)},
			[2]string{"k1", stringValue(value)},
			[2]string{"k2", stringValue(value)},
			[2]string{"k3", uint32Array(4)},
			[2]string{"k4", stringValue("")},
		)
		h, err := readWithLimits(data, limits{headerBytes: MaxHeaderBytes, retainedBytes: budget})
		require.NoError(t, err)
		tests := []struct {
			key  string
			kept bool
		}{
			{"k0", true},
			{"k1", true},
			{"k2", false},
			{"k3", false},
			{"k4", true},
		}
		for _, tc := range tests {
			v, ok := h.Get(tc.key)
			require.True(t, ok, tc.key)
			assert.Equal(t, tc.kept, v.Retained(), tc.key)
		}
	})

	t.Run("keys past the budget fail", func(t *testing.T) {
		data := kvFile(
			[2]string{"k0", stringValue(value)},
			[2]string{"k1", stringValue(value)},
		)
		_, err := readWithLimits(data, limits{headerBytes: MaxHeaderBytes, retainedBytes: kvCost + 2 + 1000})
		var fe *FormatError
		require.True(t, errors.As(err, &fe), "got %v", err)
		assert.Contains(t, fe.Reason, "keeps more than")
		assert.Contains(t, fe.Reason, "key #1")
	})
}

func TestRead_SmallHeaderLimit(t *testing.T) {
	data := kvFile(
		[2]string{"k0", stringValue("abc")},
		[2]string{"k1", uint32Array(100)},
	)
	tests := []struct {
		name   string
		limit  int64
		reason string
	}{
		{"metadata count", 30, "2 metadata pairs cannot fit"},
		{"in second key", 54, "name length of 8 bytes goes past the 54-byte header limit (key #1)"},
		{"in array", 80, `100 uint32 array elements cannot fit in the 80-byte header limit (key "k1")`},
		{"exact", int64(len(data)), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := readWithLimits(data, limits{headerBytes: tc.limit, retainedBytes: MaxRetainedBytes})
			if tc.reason == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.limit, h.Size)
				return
			}
			var fe *FormatError
			require.True(t, errors.As(err, &fe), "got %v", err)
			assert.Contains(t, fe.Reason, tc.reason)
			assert.LessOrEqual(t, fe.Offset, tc.limit)
		})
	}
}
