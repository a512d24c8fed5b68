package gguf

import (
	"fmt"
	"math"
	"strconv"
)

// ValueType is the type tag of a metadata value as stored in a GGUF file.
type ValueType uint32

// Value types defined by the GGUF format.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var typeNames = [...]string{
	TypeUint8:   "uint8",
	TypeInt8:    "int8",
	TypeUint16:  "uint16",
	TypeInt16:   "int16",
	TypeUint32:  "uint32",
	TypeInt32:   "int32",
	TypeFloat32: "float32",
	TypeBool:    "bool",
	TypeString:  "string",
	TypeArray:   "array",
	TypeUint64:  "uint64",
	TypeInt64:   "int64",
	TypeFloat64: "float64",
}

// wireSizes holds the encoded size of each fixed-size type; zero marks the
// variable-size types (string and array).
var wireSizes = [...]int{
	TypeUint8:   1,
	TypeInt8:    1,
	TypeUint16:  2,
	TypeInt16:   2,
	TypeUint32:  4,
	TypeInt32:   4,
	TypeFloat32: 4,
	TypeBool:    1,
	TypeString:  0,
	TypeArray:   0,
	TypeUint64:  8,
	TypeInt64:   8,
	TypeFloat64: 8,
}

// Valid reports whether t is one of the types defined by the format.
func (t ValueType) Valid() bool {
	return int(t) < len(typeNames)
}

// String returns the name of the type, such as "uint32", or "type(N)" for a
// type the format does not define.
func (t ValueType) String() string {
	if !t.Valid() {
		return "type(" + strconv.FormatUint(uint64(t), 10) + ")"
	}
	return typeNames[t]
}

// fixedSize returns the encoded size of a fixed-size type and false for
// strings, arrays and undefined types.
func (t ValueType) fixedSize() (int, bool) {
	if !t.Valid() || wireSizes[t] == 0 {
		return 0, false
	}
	return wireSizes[t], true
}

// minWireSize is the fewest bytes one value of type t occupies: a string is at
// least its length field, an array at least its element type and count.
func (t ValueType) minWireSize() int64 {
	switch t {
	case TypeString:
		return 8
	case TypeArray:
		return 12
	}
	n, _ := t.fixedSize()
	return int64(n)
}

func (t ValueType) signed() bool {
	switch t {
	case TypeInt8, TypeInt16, TypeInt32, TypeInt64:
		return true
	}
	return false
}

func (t ValueType) unsigned() bool {
	switch t {
	case TypeUint8, TypeUint16, TypeUint32, TypeUint64:
		return true
	}
	return false
}

// Value is one metadata value. Scalars are always kept. A string is kept
// when it is at most MaxKeptStringLen bytes long and an array when it has at
// most MaxArrayElems elements, all of them kept; otherwise only the type and
// Len are recorded and Retained reports false.
//
// The zero Value is an absent value: every accessor reports false.
type Value struct {
	// Type is the value's type tag.
	Type ValueType
	// ElemType is the element type of an array; zero for other types.
	ElemType ValueType
	// Len is the declared byte length of a string or element count of an
	// array, whether or not its content was kept; zero for scalars.
	Len uint64
	// Elems holds the elements of a kept array; nil when the array was not
	// kept (see Retained).
	Elems []Value

	bits uint64 // integer (sign-extended), float bits as stored, or 0/1 for bool
	str  string
	kept bool // content of a string or array is held in str or Elems
	set  bool // the value was decoded or built, so the zero Value is "absent"
}

// Retained reports whether the value's content is held in memory: always true
// for scalars, and true for strings and arrays that were small enough to keep.
func (v Value) Retained() bool {
	switch v.Type {
	case TypeString, TypeArray:
		return v.kept
	}
	return v.set
}

// AsUint returns the value of any integer type as a uint64. It reports false
// for other types and for negative values.
func (v Value) AsUint() (uint64, bool) {
	switch {
	case !v.set:
		return 0, false
	case v.Type.unsigned():
		return v.bits, true
	case v.Type.signed() && int64(v.bits) >= 0:
		return v.bits, true
	}
	return 0, false
}

// AsInt returns the value of any integer type as an int64. It reports false
// for other types and for unsigned values above math.MaxInt64.
func (v Value) AsInt() (int64, bool) {
	switch {
	case !v.set:
		return 0, false
	case v.Type.signed():
		return int64(v.bits), true
	case v.Type.unsigned() && v.bits <= math.MaxInt64:
		return int64(v.bits), true
	}
	return 0, false
}

// AsFloat returns a float32 or float64 value as a float64. It reports false
// for every other type, integers included.
func (v Value) AsFloat() (float64, bool) {
	switch {
	case !v.set:
		return 0, false
	case v.Type == TypeFloat32:
		return float64(math.Float32frombits(uint32(v.bits))), true
	case v.Type == TypeFloat64:
		return math.Float64frombits(v.bits), true
	}
	return 0, false
}

// AsBool returns a bool value. It reports false for every other type.
func (v Value) AsBool() (bool, bool) {
	if !v.set || v.Type != TypeBool {
		return false, false
	}
	return v.bits != 0, true
}

// AsString returns a string value. It reports false for other types and for
// strings that were too long to keep.
func (v Value) AsString() (string, bool) {
	if !v.set || v.Type != TypeString || !v.kept {
		return "", false
	}
	return v.str, true
}

// Interface returns the value as the Go type that matches its GGUF type:
// uint8 through float64, bool, string, or for an array a slice of the
// element type ([]uint32, []string, ...; []any for arrays of arrays). It
// returns nil for an absent value and for strings or arrays that were not
// kept.
func (v Value) Interface() any {
	if !v.set {
		return nil
	}
	switch v.Type {
	case TypeUint8:
		return uint8(v.bits)
	case TypeInt8:
		return int8(v.bits)
	case TypeUint16:
		return uint16(v.bits)
	case TypeInt16:
		return int16(v.bits)
	case TypeUint32:
		return uint32(v.bits)
	case TypeInt32:
		return int32(v.bits)
	case TypeUint64:
		return v.bits
	case TypeInt64:
		return int64(v.bits)
	case TypeFloat32:
		return math.Float32frombits(uint32(v.bits))
	case TypeFloat64:
		return math.Float64frombits(v.bits)
	case TypeBool:
		return v.bits != 0
	case TypeString:
		if !v.kept {
			return nil
		}
		return v.str
	case TypeArray:
		if !v.kept {
			return nil
		}
		return v.sliceInterface()
	}
	return nil
}

func (v Value) sliceInterface() any {
	switch v.ElemType {
	case TypeUint8:
		return collect[uint8](v.Elems)
	case TypeInt8:
		return collect[int8](v.Elems)
	case TypeUint16:
		return collect[uint16](v.Elems)
	case TypeInt16:
		return collect[int16](v.Elems)
	case TypeUint32:
		return collect[uint32](v.Elems)
	case TypeInt32:
		return collect[int32](v.Elems)
	case TypeUint64:
		return collect[uint64](v.Elems)
	case TypeInt64:
		return collect[int64](v.Elems)
	case TypeFloat32:
		return collect[float32](v.Elems)
	case TypeFloat64:
		return collect[float64](v.Elems)
	case TypeBool:
		return collect[bool](v.Elems)
	case TypeString:
		return collect[string](v.Elems)
	}
	return collect[any](v.Elems)
}

func collect[T any](elems []Value) []T {
	out := make([]T, len(elems))
	for i, e := range elems {
		out[i], _ = e.Interface().(T)
	}
	return out
}

// String formats the value for logs and debugging. Strings and arrays that
// were not kept are shown by type and length only.
func (v Value) String() string {
	if !v.set {
		return "<absent>"
	}
	switch v.Type {
	case TypeString:
		if !v.kept {
			return fmt.Sprintf("<string, %d bytes, not kept>", v.Len)
		}
		return strconv.Quote(v.str)
	case TypeArray:
		if !v.kept {
			return fmt.Sprintf("<array of %d %s, not kept>", v.Len, v.ElemType)
		}
		return fmt.Sprint(v.Interface())
	}
	return fmt.Sprint(v.Interface())
}
