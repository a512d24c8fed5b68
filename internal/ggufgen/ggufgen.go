// Package ggufgen writes small GGUF files for tests and for the example
// models under examples/models. It is not a model converter: it writes
// exactly the metadata and tensors it is given, in the real GGUF layout, and
// can also write deliberately malformed values (see RawValue) so readers can
// be tested against hostile input.
package ggufgen

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
)

// DefaultAlignment is the alignment of the tensor data section when kvs has
// no usable general.alignment.
const DefaultAlignment = 32

const keyAlignment = "general.alignment"

// GGUF value type tags.
const (
	typeUint8   = 0
	typeInt8    = 1
	typeUint16  = 2
	typeInt16   = 3
	typeUint32  = 4
	typeInt32   = 5
	typeFloat32 = 6
	typeBool    = 7
	typeString  = 8
	typeArray   = 9
	typeUint64  = 10
	typeInt64   = 11
	typeFloat64 = 12
)

// KV is one metadata pair. Value may be a string, bool, any sized integer
// (uint8 through int64, not int or uint), float32, float64, a RawValue, or a
// slice of any of these except RawValue (slices of slices become arrays of
// arrays). []byte is written as an array of uint8.
type KV struct {
	// Key is the metadata key, such as "general.architecture".
	Key string
	// Value is the Go value to encode.
	Value any
}

// RawValue is written as the type tag Type followed by Payload, unchecked.
// Tests use it to produce unknown types and lengths that lie.
type RawValue struct {
	// Type is the value type tag written after the key.
	Type uint32
	// Payload is written verbatim after the type tag.
	Payload []byte
}

// Tensor is one tensor info and, optionally, its data.
type Tensor struct {
	// Name is the tensor name, such as "token_embd.weight".
	Name string
	// Dims holds the dimensions, innermost first; written as given.
	Dims []uint64
	// Type is the ggml type (0 F32, 1 F16, 8 Q8_0, ...).
	Type uint32
	// Offset is the data offset relative to the data section. PackTensors
	// assigns offsets from the lengths of Data.
	Offset uint64
	// Data, when not empty, is written at Offset in the data section.
	Data []byte
}

// Write writes a GGUF file to w: the header with version (written as given,
// with the version 2/3 layout), kvs in order and the tensor infos, zero
// padding to the alignment, then the Data of each tensor at its Offset in
// the data section, the last one padded to the alignment as well.
//
// It returns an error for a value type it cannot encode and for tensor data
// that would overlap earlier data; nothing is written in either case.
func Write(w io.Writer, version uint32, kvs []KV, tensors []Tensor) error {
	b, err := Encode(version, kvs, tensors)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("ggufgen: write: %w", err)
	}
	return nil
}

// WriteFile writes the file that Write would produce to path, creating or
// truncating it.
func WriteFile(path string, version uint32, kvs []KV, tensors []Tensor) error {
	b, err := Encode(version, kvs, tensors)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("ggufgen: %w", err)
	}
	return nil
}

// Encode returns the bytes that Write would write. The same arguments always
// give the same bytes.
func Encode(version uint32, kvs []KV, tensors []Tensor) ([]byte, error) {
	var b []byte
	b = append(b, "GGUF"...)
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(tensors)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(kvs)))
	for _, kv := range kvs {
		var err error
		if b, err = appendKV(b, kv); err != nil {
			return nil, err
		}
	}
	for _, t := range tensors {
		b = appendString(b, t.Name)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			b = binary.LittleEndian.AppendUint64(b, d)
		}
		b = binary.LittleEndian.AppendUint32(b, t.Type)
		b = binary.LittleEndian.AppendUint64(b, t.Offset)
	}

	align := alignment(kvs)
	b = pad(b, align)
	var data []byte
	for _, t := range tensors {
		if len(t.Data) == 0 {
			continue
		}
		if t.Offset < uint64(len(data)) {
			return nil, fmt.Errorf("ggufgen: tensor %q: offset %d overlaps data ending at %d", t.Name, t.Offset, len(data))
		}
		data = append(data, make([]byte, t.Offset-uint64(len(data)))...)
		data = pad(append(data, t.Data...), align)
	}
	return append(b, data...), nil
}

// PackTensors returns a copy of tensors with offsets assigned back to back
// in order, each rounded up to alignment (DefaultAlignment when zero).
func PackTensors(tensors []Tensor, alignment uint64) []Tensor {
	if alignment == 0 {
		alignment = DefaultAlignment
	}
	out := make([]Tensor, len(tensors))
	var off uint64
	for i, t := range tensors {
		t.Offset = off
		off = (off + uint64(len(t.Data)) + alignment - 1) / alignment * alignment
		out[i] = t
	}
	return out
}

// alignment returns general.alignment from kvs when it is an unsigned
// integer that is a power of two, and DefaultAlignment otherwise.
func alignment(kvs []KV) uint64 {
	for _, kv := range kvs {
		if kv.Key != keyAlignment {
			continue
		}
		v := reflect.ValueOf(kv.Value)
		if !v.IsValid() || !v.CanUint() {
			break
		}
		if a := v.Uint(); a != 0 && a <= math.MaxUint32 && a&(a-1) == 0 {
			return a
		}
	}
	return DefaultAlignment
}

func pad(b []byte, align uint64) []byte {
	n := uint64(len(b)) % align
	if n == 0 {
		return b
	}
	return append(b, make([]byte, align-n)...)
}

func appendKV(b []byte, kv KV) ([]byte, error) {
	b = appendString(b, kv.Key)
	if raw, ok := kv.Value.(RawValue); ok {
		b = binary.LittleEndian.AppendUint32(b, raw.Type)
		return append(b, raw.Payload...), nil
	}
	v := reflect.ValueOf(kv.Value)
	if !v.IsValid() {
		return nil, fmt.Errorf("ggufgen: key %q: nil value", kv.Key)
	}
	tag, err := typeTag(v.Type())
	if err != nil {
		return nil, fmt.Errorf("ggufgen: key %q: %w", kv.Key, err)
	}
	b = binary.LittleEndian.AppendUint32(b, tag)
	if b, err = appendPayload(b, v); err != nil {
		return nil, fmt.Errorf("ggufgen: key %q: %w", kv.Key, err)
	}
	return b, nil
}

// typeTag maps a Go type to its GGUF value type.
func typeTag(t reflect.Type) (uint32, error) {
	switch t.Kind() {
	case reflect.Uint8:
		return typeUint8, nil
	case reflect.Int8:
		return typeInt8, nil
	case reflect.Uint16:
		return typeUint16, nil
	case reflect.Int16:
		return typeInt16, nil
	case reflect.Uint32:
		return typeUint32, nil
	case reflect.Int32:
		return typeInt32, nil
	case reflect.Float32:
		return typeFloat32, nil
	case reflect.Bool:
		return typeBool, nil
	case reflect.String:
		return typeString, nil
	case reflect.Slice, reflect.Array:
		if _, err := typeTag(t.Elem()); err != nil {
			return 0, fmt.Errorf("array element: %w", err)
		}
		return typeArray, nil
	case reflect.Uint64:
		return typeUint64, nil
	case reflect.Int64:
		return typeInt64, nil
	case reflect.Float64:
		return typeFloat64, nil
	}
	return 0, fmt.Errorf("unsupported type %s", t)
}

// appendPayload appends the encoding of v without its type tag; for an array
// that is the element type, the count and the element payloads.
func appendPayload(b []byte, v reflect.Value) ([]byte, error) {
	switch v.Kind() {
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return appendUint(b, v.Uint(), int(v.Type().Size())), nil
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendUint(b, uint64(v.Int()), int(v.Type().Size())), nil
	case reflect.Float32:
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v.Float()))), nil
	case reflect.Float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float())), nil
	case reflect.Bool:
		if v.Bool() {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case reflect.String:
		return appendString(b, v.String()), nil
	case reflect.Slice, reflect.Array:
		tag, err := typeTag(v.Type().Elem())
		if err != nil {
			return nil, err
		}
		b = binary.LittleEndian.AppendUint32(b, tag)
		b = binary.LittleEndian.AppendUint64(b, uint64(v.Len()))
		for i := range v.Len() {
			if b, err = appendPayload(b, v.Index(i)); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("unsupported type %s", v.Type())
}

func appendUint(b []byte, u uint64, size int) []byte {
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], u)
	return append(b, buf[:size]...)
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}
