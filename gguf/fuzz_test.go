package gguf_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/model-provisioner/model-provisioner/gguf"
	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
)

func FuzzRead(f *testing.F) {
	valid := [][]byte{
		encode(f, 3, llamaKVs(), llamaTensors()),
		encode(f, 2, []ggufgen.KV{
			{Key: "general.architecture", Value: "qwen2"},
			{Key: "qwen2.context_length", Value: uint64(32768)},
			{Key: "nested", Value: [][]int16{{1, -1}, {}}},
			{Key: "strings", Value: []string{"a", "bb"}},
			{Key: "f64", Value: 0.5},
			{Key: "i8", Value: int8(-1)},
		}, []ggufgen.Tensor{{Name: "w", Dims: []uint64{2, 2, 2}, Type: 8, Offset: 0}}),
		encode(f, 3, []ggufgen.KV{
			{Key: "long", Value: strings.Repeat("z", 300)},
			{Key: "many", Value: make([]uint8, gguf.MaxArrayElems+1)},
			{Key: "many.strings", Value: make([]string, gguf.MaxArrayElems+1)},
		}, nil),
		rawHeader(3, 0, 0),
	}
	for _, b := range valid {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("PK\x03\x04"))
	f.Add(rawHeader(1, 0, 0))
	f.Add(rawHeader(3, 0, 1, str("k"), le32(8), le64(1<<62)))
	f.Add(rawHeader(3, 0, 1, str("k"), le32(13)))
	f.Add(rawHeader(3, 0, 1, str("k"), le32(9), le32(9), le64(1), le32(9), le64(1)))
	f.Add(rawHeader(3, 1, 0, str("t"), le32(9)))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opts := range []gguf.Options{{}, {TensorInfos: true}} {
			h, err := gguf.ReadWithOptions(bytes.NewReader(data), opts)
			if err != nil {
				checkError(t, data, err)
				continue
			}
			checkHeader(t, data, h, opts)
		}
	})
}

func checkError(t *testing.T, data []byte, err error) {
	t.Helper()
	if errors.Is(err, gguf.ErrNotGGUF) {
		if len(data) >= 4 && string(data[:4]) == gguf.Magic {
			t.Fatalf("GGUF magic reported as not GGUF: %v", err)
		}
		return
	}
	var fe *gguf.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error is neither ErrNotGGUF nor *FormatError: %T %v", err, err)
	}
	if fe.Offset < 0 || fe.Offset > int64(len(data)) {
		t.Fatalf("error offset %d outside input of %d bytes: %v", fe.Offset, len(data), err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) && fe.Offset != int64(len(data)) {
		t.Fatalf("truncation reported at %d, input is %d bytes: %v", fe.Offset, len(data), err)
	}
}

func checkHeader(t *testing.T, data []byte, h *gguf.Header, opts gguf.Options) {
	t.Helper()
	if h.Size > int64(len(data)) || h.Size < 24 {
		t.Fatalf("header size %d, input is %d bytes", h.Size, len(data))
	}
	if h.Version != 2 && h.Version != 3 {
		t.Fatalf("accepted version %d", h.Version)
	}
	if opts.TensorInfos && uint64(len(h.Tensors)) != h.TensorCount {
		t.Fatalf("read %d tensor infos, header declares %d", len(h.Tensors), h.TensorCount)
	}
	seen := make(map[string]bool, len(h.KVs))
	roundTrip := !opts.TensorInfos
	kvs := make([]ggufgen.KV, 0, len(h.KVs))
	for _, kv := range h.KVs {
		if seen[kv.Key] {
			t.Fatalf("duplicate key %q accepted", kv.Key)
		}
		seen[kv.Key] = true
		if got, ok := h.Get(kv.Key); !ok || got.Type != kv.Value.Type {
			t.Fatalf("Get(%q) does not find the pair", kv.Key)
		}
		checkValue(t, kv.Value, 1)
		if !kv.Value.Retained() || kv.Value.ElemType == gguf.TypeArray {
			roundTrip = false
		}
		kvs = append(kvs, ggufgen.KV{Key: kv.Key, Value: kv.Value.Interface()})
	}
	_, _ = h.ContextLength()
	_, _ = h.ParameterCount()
	_, _ = h.DataOffset()

	if !roundTrip {
		return
	}
	// Every value was kept, so encoding them again must reproduce the input.
	enc, err := ggufgen.Encode(h.Version, kvs, nil)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	binary.LittleEndian.PutUint64(enc[8:], h.TensorCount)
	if !bytes.Equal(enc[:h.Size], data[:h.Size]) {
		t.Fatalf("re-encoded header differs from input")
	}
}

func checkValue(t *testing.T, v gguf.Value, depth int) {
	t.Helper()
	if depth > gguf.MaxArrayDepth+1 {
		t.Fatalf("value nested %d deep", depth)
	}
	_ = v.String()
	switch v.Type {
	case gguf.TypeString:
		s, ok := v.AsString()
		if ok != v.Retained() || (ok && uint64(len(s)) != v.Len) {
			t.Fatalf("string of length %d kept as %d bytes (retained %v)", v.Len, len(s), v.Retained())
		}
	case gguf.TypeArray:
		if v.Retained() && uint64(len(v.Elems)) != v.Len {
			t.Fatalf("kept array of %d has %d elements", v.Len, len(v.Elems))
		}
		if !v.Retained() && v.Elems != nil {
			t.Fatalf("array not kept but has elements")
		}
		for _, e := range v.Elems {
			if e.Type != v.ElemType {
				t.Fatalf("element type %s in array of %s", e.Type, v.ElemType)
			}
			checkValue(t, e, depth+1)
		}
	default:
		if !v.Retained() || v.Interface() == nil {
			t.Fatalf("scalar %s not kept", v.Type)
		}
	}
}
