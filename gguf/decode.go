package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"unsafe"
)

// Approximate memory held per kept item beyond its string bytes, charged
// against the retained-bytes budget. Map entries are estimated generously.
const (
	mapEntryCost = 48
	valueCost    = int64(unsafe.Sizeof(Value{}))
	kvCost       = int64(unsafe.Sizeof(KV{})) + mapEntryCost
	tensorCost   = int64(unsafe.Sizeof(TensorInfo{})) + mapEntryCost
)

// Smallest encodings of a metadata pair (empty key, type, one-byte value)
// and of a tensor info (empty name, no dimensions, type, offset), used to
// reject counts that could not fit under the header byte limit.
const (
	minKVWireSize     = 8 + 4 + 1
	minTensorWireSize = 8 + 4 + 4 + 8
)

// preallocCap bounds slice and map capacity reserved up front from a count
// read from the input; larger counts grow by appending as data arrives.
const preallocCap = 256

// limits are the limits a decoder enforces. They are constants in
// production; tests shrink them to exercise the limits cheaply.
type limits struct {
	headerBytes   int64
	retainedBytes int64
}

func defaultLimits() limits {
	return limits{headerBytes: MaxHeaderBytes, retainedBytes: MaxRetainedBytes}
}

// decoder reads one header. off counts every byte consumed from r, so it is
// both the position for error messages and the measure for the header byte
// limit.
type decoder struct {
	r        *bufio.Reader
	lim      limits
	off      int64
	retained int64
	scratch  [8]byte

	// Context for error messages: the section ("key" or "tensor"), the
	// entry's index in it and, once read, its name.
	kind  string
	index uint64
	name  string
}

func newDecoder(r io.Reader, lim limits) *decoder {
	return &decoder{r: bufio.NewReaderSize(r, readBufferSize), lim: lim}
}

func (d *decoder) header(opts Options) (*Header, error) {
	if err := d.magic(); err != nil {
		return nil, err
	}
	version, err := d.uint32("version")
	if err != nil {
		return nil, err
	}
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	h := &Header{Version: version}

	if h.TensorCount, err = d.uint64("tensor count"); err != nil {
		return nil, err
	}
	if h.TensorCount > MaxTensorCount {
		return nil, d.formatErr(d.off-8, "tensor count %d exceeds limit %d", h.TensorCount, MaxTensorCount)
	}
	kvCount, err := d.uint64("metadata count")
	if err != nil {
		return nil, err
	}
	if kvCount > MaxKVCount {
		return nil, d.formatErr(d.off-8, "metadata count %d exceeds limit %d", kvCount, MaxKVCount)
	}
	if err := d.fits(kvCount, minKVWireSize, "metadata pairs"); err != nil {
		return nil, err
	}

	n := min(kvCount, preallocCap)
	h.KVs = make([]KV, 0, n)
	h.index = make(map[string]int, n)
	d.kind = "key"
	for i := range kvCount {
		d.index, d.name = i, ""
		kv, err := d.kv(h.index)
		if err != nil {
			return nil, err
		}
		h.index[kv.Key] = len(h.KVs)
		h.KVs = append(h.KVs, kv)
	}
	h.Size = d.off

	if !opts.TensorInfos {
		return h, nil
	}
	if h.Tensors, err = d.tensorInfos(h.TensorCount); err != nil {
		return nil, err
	}
	h.tensorInfos = true
	h.Size = d.off
	return h, nil
}

func (d *decoder) magic() error {
	b := d.scratch[:len(Magic)]
	n, err := io.ReadFull(d.r, b)
	d.off += int64(n)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: input is %d bytes, shorter than the magic", ErrNotGGUF, n)
	case err != nil:
		return fmt.Errorf("gguf: read magic: %w", err)
	case string(b) != Magic:
		return fmt.Errorf("%w: starts with %q, want %q", ErrNotGGUF, b, Magic)
	}
	return nil
}

func checkVersion(v uint32) error {
	const off = int64(len(Magic))
	switch {
	case v == 2 || v == 3:
		return nil
	case v == 1:
		return &FormatError{Offset: off, Err: ErrUnsupportedVersion,
			Reason: "GGUF version 1 uses 32-bit counts and lengths; convert the model again with a current GGUF converter"}
	case swapped(v) >= 1 && swapped(v) <= 3:
		return &FormatError{Offset: off, Err: ErrUnsupportedVersion,
			Reason: fmt.Sprintf("big-endian GGUF (version %d) is not supported", swapped(v))}
	}
	return &FormatError{Offset: off, Err: ErrUnsupportedVersion,
		Reason: fmt.Sprintf("GGUF version %d is not supported (want 2 or 3)", v)}
}

func swapped(v uint32) uint32 { return bits.ReverseBytes32(v) }

// kv decodes one metadata pair, rejecting keys already in seen.
func (d *decoder) kv(seen map[string]int) (KV, error) {
	start := d.off
	key, err := d.readName(kvCost)
	if err != nil {
		return KV{}, err
	}
	if _, dup := seen[key]; dup {
		return KV{}, d.formatErr(start, "duplicate key %s", quote(key))
	}
	d.name = key
	t, err := d.uint32("value type")
	if err != nil {
		return KV{}, err
	}
	if !ValueType(t).Valid() {
		return KV{}, d.formatErr(d.off-4, "unknown value type %d", t)
	}
	v, err := d.value(ValueType(t), 0, true)
	if err != nil {
		return KV{}, err
	}
	return KV{Key: key, Value: v}, nil
}

// value decodes one value of type t. depth is the number of arrays that
// enclose it; keep says whether its content may be kept at all.
func (d *decoder) value(t ValueType, depth int, keep bool) (Value, error) {
	switch t {
	case TypeString:
		return d.stringValue(keep)
	case TypeArray:
		return d.array(depth+1, keep)
	}
	size, ok := t.fixedSize()
	if !ok {
		return Value{}, d.formatErr(d.off, "unknown value type %d", uint32(t))
	}
	b, err := d.read(size, t.String()+" value")
	if err != nil {
		return Value{}, err
	}
	v := Value{Type: t, set: true}
	switch t {
	case TypeUint8:
		v.bits = uint64(b[0])
	case TypeInt8:
		v.bits = uint64(int64(int8(b[0])))
	case TypeUint16:
		v.bits = uint64(binary.LittleEndian.Uint16(b))
	case TypeInt16:
		v.bits = uint64(int64(int16(binary.LittleEndian.Uint16(b))))
	case TypeUint32:
		v.bits = uint64(binary.LittleEndian.Uint32(b))
	case TypeInt32:
		v.bits = uint64(int64(int32(binary.LittleEndian.Uint32(b))))
	case TypeUint64, TypeInt64:
		v.bits = binary.LittleEndian.Uint64(b)
	case TypeFloat32:
		v.bits = uint64(binary.LittleEndian.Uint32(b))
	case TypeFloat64:
		v.bits = binary.LittleEndian.Uint64(b)
	case TypeBool:
		if b[0] > 1 {
			return Value{}, d.formatErr(d.off-1, "bool value %d is neither 0 nor 1", b[0])
		}
		v.bits = uint64(b[0])
	}
	return v, nil
}

func (d *decoder) stringValue(keep bool) (Value, error) {
	start := d.off
	n, err := d.uint64("string length")
	if err != nil {
		return Value{}, err
	}
	if n > MaxStringLen {
		return Value{}, d.formatErr(start, "string length %d exceeds limit %d", n, MaxStringLen)
	}
	v := Value{Type: TypeString, Len: n, set: true}
	if !keep || n > MaxKeptStringLen || !d.charge(int64(n)) {
		return v, d.skip(int64(n), "string")
	}
	if v.str, err = d.readString(int64(n), "string"); err != nil {
		return Value{}, err
	}
	v.kept = true
	return v, nil
}

func (d *decoder) array(depth int, keep bool) (Value, error) {
	start := d.off
	if depth > MaxArrayDepth {
		return Value{}, d.formatErr(start, "arrays nested deeper than %d", MaxArrayDepth)
	}
	t, err := d.uint32("array element type")
	if err != nil {
		return Value{}, err
	}
	et := ValueType(t)
	switch {
	case !et.Valid():
		return Value{}, d.formatErr(d.off-4, "unknown array element type %d", t)
	case et == TypeArray && depth >= MaxArrayDepth:
		return Value{}, d.formatErr(start, "arrays nested deeper than %d", MaxArrayDepth)
	}
	n, err := d.uint64("array length")
	if err != nil {
		return Value{}, err
	}
	if err := d.fits(n, et.minWireSize(), et.String()+" array elements"); err != nil {
		return Value{}, err
	}

	v := Value{Type: TypeArray, ElemType: et, Len: n, set: true}
	keep = keep && n <= MaxArrayElems && d.charge(int64(n)*valueCost)
	if size, fixed := et.fixedSize(); fixed && !keep {
		// fits has checked n*size against the byte limit, so the product
		// cannot overflow.
		return v, d.skip(int64(n)*int64(size), et.String()+" array")
	}
	if keep {
		v.Elems = make([]Value, 0, n)
	}
	for range n {
		e, err := d.value(et, depth, keep)
		if err != nil {
			return Value{}, err
		}
		if !keep {
			continue
		}
		if !e.Retained() {
			keep, v.Elems = false, nil
			continue
		}
		v.Elems = append(v.Elems, e)
	}
	v.kept = keep
	return v, nil
}

func (d *decoder) tensorInfos(count uint64) ([]TensorInfo, error) {
	if err := d.fits(count, minTensorWireSize, "tensor infos"); err != nil {
		return nil, err
	}
	n := min(count, preallocCap)
	tensors := make([]TensorInfo, 0, n)
	seen := make(map[string]struct{}, n)
	d.kind = "tensor"
	for i := range count {
		d.index, d.name = i, ""
		start := d.off
		name, err := d.readName(tensorCost)
		if err != nil {
			return nil, err
		}
		if _, dup := seen[name]; dup {
			return nil, d.formatErr(start, "duplicate tensor name %s", quote(name))
		}
		d.name = name
		t, err := d.tensorInfo(name)
		if err != nil {
			return nil, err
		}
		seen[name] = struct{}{}
		tensors = append(tensors, t)
	}
	return tensors, nil
}

func (d *decoder) tensorInfo(name string) (TensorInfo, error) {
	nDims, err := d.uint32("dimension count")
	if err != nil {
		return TensorInfo{}, err
	}
	if nDims > MaxTensorDims {
		return TensorInfo{}, d.formatErr(d.off-4, "%d dimensions exceed limit %d", nDims, MaxTensorDims)
	}
	if !d.charge(int64(nDims) * 8) {
		return TensorInfo{}, d.budgetErr(d.off - 4)
	}
	t := TensorInfo{Name: name, Dims: make([]uint64, nDims)}
	for i := range t.Dims {
		if t.Dims[i], err = d.uint64("dimension"); err != nil {
			return TensorInfo{}, err
		}
		if t.Dims[i] > math.MaxInt64 {
			return TensorInfo{}, d.formatErr(d.off-8, "dimension %d is %d, beyond 2^63-1", i, t.Dims[i])
		}
	}
	if t.Type, err = d.uint32("tensor type"); err != nil {
		return TensorInfo{}, err
	}
	if t.Offset, err = d.uint64("tensor offset"); err != nil {
		return TensorInfo{}, err
	}
	return t, nil
}

// readName reads a key or tensor name, which is always kept; cost is the
// overhead charged with it.
func (d *decoder) readName(cost int64) (string, error) {
	start := d.off
	n, err := d.uint64("name length")
	if err != nil {
		return "", err
	}
	if n > MaxKeyLen {
		return "", d.formatErr(start, "name length %d exceeds limit %d", n, MaxKeyLen)
	}
	if !d.charge(int64(n) + cost) {
		return "", d.budgetErr(start)
	}
	return d.readString(int64(n), "name")
}

// charge reserves n bytes of the retained-memory budget and reports whether
// they were available.
func (d *decoder) charge(n int64) bool {
	if n > d.lim.retainedBytes-d.retained {
		return false
	}
	d.retained += n
	return true
}

// fits checks that count items of at least size bytes each can fit in what
// is left of the header byte limit, so that a count from the input never
// drives a long loop or an overflowing size computation.
func (d *decoder) fits(count uint64, size int64, what string) error {
	left := d.lim.headerBytes - d.off
	if count > 0 && count > uint64(left/size) {
		return d.formatErr(d.off, "%d %s cannot fit in the %d-byte header limit", count, what, d.lim.headerBytes)
	}
	return nil
}

// reserve checks that n more bytes may be read under the header byte limit.
func (d *decoder) reserve(n int64, what string) error {
	if n > d.lim.headerBytes-d.off {
		return d.formatErr(d.off, "%s of %d bytes goes past the %d-byte header limit", what, n, d.lim.headerBytes)
	}
	return nil
}

// read returns the next n (at most 8) bytes, valid until the next read.
func (d *decoder) read(n int, what string) ([]byte, error) {
	if err := d.reserve(int64(n), what); err != nil {
		return nil, err
	}
	b := d.scratch[:n]
	k, err := io.ReadFull(d.r, b)
	d.off += int64(k)
	if err != nil {
		return nil, d.readErr(what, err)
	}
	return b, nil
}

func (d *decoder) uint32(what string) (uint32, error) {
	b, err := d.read(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) uint64(what string) (uint64, error) {
	b, err := d.read(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// readString reads n bytes into a string. Callers have checked n against a
// limit; bytes are copied straight from the read buffer, so only the string
// itself is allocated.
func (d *decoder) readString(n int64, what string) (string, error) {
	if err := d.reserve(n, what); err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.Grow(int(n))
	for left := n; left > 0; {
		b, err := d.r.Peek(int(min(left, int64(d.r.Size()))))
		sb.Write(b)
		_, _ = d.r.Discard(len(b)) // cannot fail: b is buffered
		d.off += int64(len(b))
		left -= int64(len(b))
		if err != nil {
			return "", d.readErr(what, err)
		}
	}
	return sb.String(), nil
}

// skip consumes n bytes without keeping them.
func (d *decoder) skip(n int64, what string) error {
	if err := d.reserve(n, what); err != nil {
		return err
	}
	k, err := d.r.Discard(int(n))
	d.off += int64(k)
	if err != nil {
		return d.readErr(what, err)
	}
	return nil
}

// readErr classifies a read failure: running out of input is a truncated
// header, anything else is an I/O error from the underlying reader.
func (d *decoder) readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FormatError{Offset: d.off, Reason: "truncated reading " + what + d.where(), Err: io.ErrUnexpectedEOF}
	}
	return fmt.Errorf("gguf: read %s%s at offset %d: %w", what, d.where(), d.off, err)
}

func (d *decoder) formatErr(off int64, format string, args ...any) error {
	return &FormatError{Offset: off, Reason: fmt.Sprintf(format, args...) + d.where()}
}

func (d *decoder) budgetErr(off int64) error {
	return d.formatErr(off, "header keeps more than %d bytes of names and values", d.lim.retainedBytes)
}

// where names the entry being decoded, for error messages.
func (d *decoder) where() string {
	switch {
	case d.kind == "":
		return ""
	case d.name != "":
		return " (" + d.kind + " " + quote(d.name) + ")"
	}
	return " (" + d.kind + " #" + strconv.FormatUint(d.index, 10) + ")"
}

// quote quotes s for an error message, shortening names an attacker may have
// made huge.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
