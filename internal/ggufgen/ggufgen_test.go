package ggufgen_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
)

func le32(v uint32) []byte       { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte       { return binary.LittleEndian.AppendUint64(nil, v) }
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// preamble is the fixed start of a file: magic, version and the counts.
func preamble(version uint32, tensors, kvs uint64) []byte {
	return cat([]byte("GGUF"), le32(version), le64(tensors), le64(kvs))
}

func TestEncode_Values(t *testing.T) {
	type myUint32 uint32
	tests := []struct {
		name  string
		value any
		want  []byte // type tag and payload
	}{
		{"uint8", uint8(0xab), cat(le32(0), []byte{0xab})},
		{"int8", int8(-1), cat(le32(1), []byte{0xff})},
		{"uint16", uint16(0x0102), cat(le32(2), []byte{0x02, 0x01})},
		{"int16", int16(-2), cat(le32(3), []byte{0xfe, 0xff})},
		{"uint32", uint32(4096), cat(le32(4), le32(4096))},
		{"named uint32", myUint32(7), cat(le32(4), le32(7))},
		{"int32", int32(-1), cat(le32(5), le32(0xffffffff))},
		{"float32", float32(1), cat(le32(6), le32(0x3f800000))},
		{"bool", true, cat(le32(7), []byte{1})},
		{"string", "hi", cat(le32(8), le64(2), []byte("hi"))},
		{"uint64", uint64(1 << 40), cat(le32(10), le64(1<<40))},
		{"int64", int64(-1), cat(le32(11), le64(0xffffffffffffffff))},
		{"float64", 2.0, cat(le32(12), le64(0x4000000000000000))},
		{"string array", []string{"a", ""}, cat(le32(9), le32(8), le64(2), le64(1), []byte("a"), le64(0))},
		{"bytes are uint8 arrays", []byte{5}, cat(le32(9), le32(0), le64(1), []byte{5})},
		{"nested array", [][]int16{{1}, {}}, cat(le32(9), le32(9), le64(2), le32(3), le64(1), []byte{1, 0}, le32(3), le64(0))},
		{"fixed-size Go array", [2]bool{false, true}, cat(le32(9), le32(7), le64(2), []byte{0, 1})},
		{"raw value", ggufgen.RawValue{Type: 13, Payload: []byte{9}}, cat(le32(13), []byte{9})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ggufgen.Encode(3, []ggufgen.KV{{Key: "k", Value: tc.value}}, nil)
			require.NoError(t, err)
			want := cat(preamble(3, 0, 1), le64(1), []byte("k"), tc.want)
			require.Equal(t, want, got[:len(want)])
			assert.Zero(t, len(got)%ggufgen.DefaultAlignment, "padded to the alignment")
			assert.Equal(t, make([]byte, len(got)-len(want)), got[len(want):], "padding is zeros")
		})
	}
}

func TestEncode_Errors(t *testing.T) {
	tests := []struct {
		name    string
		kvs     []ggufgen.KV
		tensors []ggufgen.Tensor
	}{
		{"int", []ggufgen.KV{{Key: "k", Value: 1}}, nil},
		{"uint", []ggufgen.KV{{Key: "k", Value: uint(1)}}, nil},
		{"nil", []ggufgen.KV{{Key: "k", Value: nil}}, nil},
		{"map", []ggufgen.KV{{Key: "k", Value: map[string]string{}}}, nil},
		{"slice of any", []ggufgen.KV{{Key: "k", Value: []any{uint8(1)}}}, nil},
		{"slice of int", []ggufgen.KV{{Key: "k", Value: []int{1}}}, nil},
		{"overlapping data", nil, []ggufgen.Tensor{
			{Name: "a", Offset: 0, Data: make([]byte, 64)},
			{Name: "b", Offset: 32, Data: make([]byte, 4)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := ggufgen.Write(&buf, 3, tc.kvs, tc.tensors)
			require.Error(t, err)
			assert.Zero(t, buf.Len(), "nothing is written on error")
		})
	}
}

func TestEncode_Tensors(t *testing.T) {
	tests := []struct {
		name  string
		kvs   []ggufgen.KV
		align int
	}{
		{"default alignment", nil, 32},
		{"general.alignment", []ggufgen.KV{{Key: "general.alignment", Value: uint32(64)}}, 64},
		{"alignment not a power of two", []ggufgen.KV{{Key: "general.alignment", Value: uint32(48)}}, 32},
		{"alignment of a signed type", []ggufgen.KV{{Key: "general.alignment", Value: int32(64)}}, 32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tensors := ggufgen.PackTensors([]ggufgen.Tensor{
				{Name: "a", Dims: []uint64{3}, Type: 0, Data: []byte{1, 2, 3}},
				{Name: "b", Dims: []uint64{2, 2}, Type: 1, Data: []byte{4, 5, 6, 7, 8, 9, 10, 11}},
				{Name: "no-data", Dims: []uint64{1}},
			}, uint64(tc.align))
			assert.Equal(t, uint64(0), tensors[0].Offset)
			assert.Equal(t, uint64(tc.align), tensors[1].Offset)
			assert.Equal(t, uint64(2*tc.align), tensors[2].Offset)

			got, err := ggufgen.Encode(3, tc.kvs, tensors)
			require.NoError(t, err)
			headerLen := len(got) - 2*tc.align // two padded data blocks
			require.Zero(t, headerLen%tc.align)

			info := cat(le64(1), []byte("b"), le32(2), le64(2), le64(2), le32(1), le64(uint64(tc.align)))
			assert.True(t, bytes.Contains(got[:headerLen], info), "tensor info for b")
			assert.Equal(t, []byte{1, 2, 3}, got[headerLen:headerLen+3])
			assert.Equal(t, tensors[1].Data, got[headerLen+tc.align:headerLen+tc.align+8])
		})
	}
}

func TestWriteFile(t *testing.T) {
	kvs := []ggufgen.KV{{Key: "general.architecture", Value: "llama"}}
	path := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, ggufgen.WriteFile(path, 2, kvs, nil))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	want, err := ggufgen.Encode(2, kvs, nil)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	err = ggufgen.WriteFile(filepath.Join(t.TempDir(), "missing", "m.gguf"), 2, kvs, nil)
	assert.True(t, errors.Is(err, os.ErrNotExist), "got %v", err)
}
