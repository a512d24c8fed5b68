package modelinfo

import (
	"math/bits"

	"github.com/model-provisioner/model-provisioner/gguf"
)

// blockLayout is how a ggml tensor type stores its elements: blocks of
// elems elements taking bytes bytes each.
type blockLayout struct {
	elems uint64
	bytes uint64
}

// ggmlTypes maps the ggml tensor types found in GGUF files to their block
// layout. Types missing here (removed ones, and any added after this table
// was written) make the weights estimate fall back to the size of the data
// section; see weightsBytes.
var ggmlTypes = map[uint32]blockLayout{
	0:  {1, 4},     // F32
	1:  {1, 2},     // F16
	2:  {32, 18},   // Q4_0: f16 scale + 16 bytes of 4-bit quants
	3:  {32, 20},   // Q4_1: f16 scale and min + 16 bytes
	6:  {32, 22},   // Q5_0: f16 scale + 4 bytes of high bits + 16 bytes
	7:  {32, 24},   // Q5_1
	8:  {32, 34},   // Q8_0: f16 scale + 32 bytes
	9:  {32, 36},   // Q8_1
	10: {256, 84},  // Q2_K
	11: {256, 110}, // Q3_K
	12: {256, 144}, // Q4_K
	13: {256, 176}, // Q5_K
	14: {256, 210}, // Q6_K
	15: {256, 292}, // Q8_K
	16: {256, 66},  // IQ2_XXS
	17: {256, 74},  // IQ2_XS
	18: {256, 98},  // IQ3_XXS
	19: {256, 50},  // IQ1_S
	20: {32, 18},   // IQ4_NL
	21: {256, 110}, // IQ3_S
	22: {256, 82},  // IQ2_S
	23: {256, 136}, // IQ4_XS
	24: {1, 1},     // I8
	25: {1, 2},     // I16
	26: {1, 4},     // I32
	27: {1, 8},     // I64
	28: {1, 8},     // F64
	29: {256, 56},  // IQ1_M
	30: {1, 2},     // BF16
	34: {256, 54},  // TQ1_0
	35: {256, 66},  // TQ2_0
	39: {32, 17},   // MXFP4: shared exponent byte + 16 bytes
}

// tensorBytes returns the bytes tensor t occupies in the data section. It
// reports false for a type missing from ggmlTypes, for a first dimension
// that is not a whole number of blocks (ggml refuses such tensors) and on
// overflow.
func tensorBytes(t gguf.TensorInfo) (uint64, bool) {
	layout, ok := ggmlTypes[t.Type]
	if !ok {
		return 0, false
	}
	n, ok := t.Elements()
	if !ok {
		return 0, false
	}
	if len(t.Dims) > 0 && t.Dims[0]%layout.elems != 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(n/layout.elems, layout.bytes)
	if hi != 0 {
		return 0, false
	}
	return lo, true
}

// fileTypeNames maps general.file_type (llama.cpp's llama_ftype) to the
// names its quantize tool uses. Ids 4 to 6 and 33 to 35 belong to formats
// llama.cpp no longer loads.
var fileTypeNames = map[int64]string{
	0:  "F32",
	1:  "F16",
	2:  "Q4_0",
	3:  "Q4_1",
	4:  "Q4_1_SOME_F16",
	7:  "Q8_0",
	8:  "Q5_0",
	9:  "Q5_1",
	10: "Q2_K",
	11: "Q3_K_S",
	12: "Q3_K_M",
	13: "Q3_K_L",
	14: "Q4_K_S",
	15: "Q4_K_M",
	16: "Q5_K_S",
	17: "Q5_K_M",
	18: "Q6_K",
	19: "IQ2_XXS",
	20: "IQ2_XS",
	21: "Q2_K_S",
	22: "IQ3_XS",
	23: "IQ3_XXS",
	24: "IQ1_S",
	25: "IQ4_NL",
	26: "IQ3_S",
	27: "IQ3_M",
	28: "IQ2_S",
	29: "IQ2_M",
	30: "IQ4_XS",
	31: "IQ1_M",
	32: "BF16",
	36: "TQ1_0",
	37: "TQ2_0",
	38: "MXFP4_MOE",
	39: "NVFP4",
	40: "Q1_0",
}

// FileTypeName returns the name of a general.file_type value, such as
// "Q4_K_M" for 15, or "" for an id it does not know.
func FileTypeName(id int64) string {
	return fileTypeNames[id]
}
