package modelinfo

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// hfFields are the config.json fields Inspect uses. Config files are
// written by many tools, so each field is decoded leniently: a value of an
// unexpected type counts as absent instead of failing the whole file.
type hfFields struct {
	Architectures jsonStrings `json:"architectures"`
	ModelType     jsonString  `json:"model_type"`

	// Context length, under the names different model families use.
	MaxPositionEmbeddings jsonInt `json:"max_position_embeddings"`
	NPositions            jsonInt `json:"n_positions"`
	MaxSeqLen             jsonInt `json:"max_seq_len"`
	MaxSequenceLength     jsonInt `json:"max_sequence_length"`
	SeqLength             jsonInt `json:"seq_length"`

	// Attention shape, for the KV-cache estimate.
	NumHiddenLayers   jsonInt    `json:"num_hidden_layers"`
	NumAttentionHeads jsonInt    `json:"num_attention_heads"`
	NumKeyValueHeads  jsonInt    `json:"num_key_value_heads"`
	HiddenSize        jsonInt    `json:"hidden_size"`
	HeadDim           jsonInt    `json:"head_dim"`
	TorchDtype        jsonString `json:"torch_dtype"`
	Dtype             jsonString `json:"dtype"`
}

// hfConfig is a config.json. Multimodal models keep the language model's
// fields under text_config; they are used when the top level lacks them.
type hfConfig struct {
	hfFields
	TextConfig jsonObject[hfFields] `json:"text_config"`
}

// pick returns the first of the top-level and text_config values that is
// set.
func pick[T any](c *hfConfig, get func(*hfFields) (T, bool)) (T, bool) {
	if v, ok := get(&c.hfFields); ok {
		return v, true
	}
	if c.TextConfig.set {
		return get(&c.TextConfig.v)
	}
	var zero T
	return zero, false
}

func (c *hfConfig) architecture() string {
	arch, _ := pick(c, func(f *hfFields) (string, bool) {
		if len(f.Architectures) > 0 && f.Architectures[0] != "" {
			return f.Architectures[0], true
		}
		return "", false
	})
	if arch == "" {
		arch, _ = pick(c, func(f *hfFields) (string, bool) { return f.ModelType.get() })
	}
	return arch
}

func (c *hfConfig) ctxMax() int64 {
	n, _ := pick(c, func(f *hfFields) (int64, bool) {
		for _, v := range []jsonInt{f.MaxPositionEmbeddings, f.NPositions, f.MaxSeqLen, f.MaxSequenceLength, f.SeqLength} {
			if n, ok := v.get(); ok {
				return n, true
			}
		}
		return 0, false
	})
	return n
}

// kvBytesPerToken estimates the KV-cache bytes per token as vLLM allocates
// them with its default cache dtype ("auto": the model's dtype, 2 bytes for
// float16 and bfloat16, and float16 for float32 checkpoints):
//
//	2 (K and V) × num_hidden_layers × num_key_value_heads × head_dim × 2 bytes
//
// with num_key_value_heads defaulting to num_attention_heads and head_dim
// to hidden_size / num_attention_heads. It returns 0 when the config lacks
// the attention shape.
func (c *hfConfig) kvBytesPerToken() (int64, string) {
	const bytesPerElem = 2
	field := func(get func(*hfFields) jsonInt) (int64, bool) {
		return pick(c, func(f *hfFields) (int64, bool) { return get(f).get() })
	}
	layers, ok1 := field(func(f *hfFields) jsonInt { return f.NumHiddenLayers })
	heads, ok2 := field(func(f *hfFields) jsonInt { return f.NumAttentionHeads })
	if !ok1 || !ok2 {
		return 0, ""
	}
	kvHeads, ok := field(func(f *hfFields) jsonInt { return f.NumKeyValueHeads })
	if !ok {
		kvHeads = heads
	}
	headDim, ok := field(func(f *hfFields) jsonInt { return f.HeadDim })
	if !ok {
		hidden, ok := field(func(f *hfFields) jsonInt { return f.HiddenSize })
		if !ok {
			return 0, ""
		}
		headDim = hidden / heads
	}
	n, ok := mulAll(2, uint64(layers), uint64(kvHeads), uint64(headDim), bytesPerElem)
	if !ok || n == 0 || n > math.MaxInt64 {
		return 0, ""
	}
	cacheType := "f16"
	dtype, _ := pick(c, func(f *hfFields) (string, bool) {
		if s, ok := f.Dtype.get(); ok {
			return s, true
		}
		return f.TorchDtype.get()
	})
	if dtype == "bfloat16" {
		cacheType = "bf16"
	}
	return int64(n), cacheType
}

// jsonInt is a positive integer from a JSON number such as 4096 or 4096.0;
// anything else leaves it unset.
type jsonInt struct {
	v   int64
	set bool
}

func (j *jsonInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		j.v, j.set = n, n > 0
		return nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && f > 0 && f < 1<<62 {
		j.v, j.set = int64(f), true
	}
	return nil
}

func (j jsonInt) get() (int64, bool) { return j.v, j.set }

// jsonString is a JSON string; anything else leaves it unset.
type jsonString struct {
	v   string
	set bool
}

func (j *jsonString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		j.set = json.Unmarshal(b, &j.v) == nil && j.v != ""
	}
	return nil
}

func (j jsonString) get() (string, bool) { return j.v, j.set }

// jsonStrings is a JSON array of strings; anything else leaves it empty.
type jsonStrings []string

func (j *jsonStrings) UnmarshalJSON(b []byte) error {
	var v []string
	if json.Unmarshal(b, &v) == nil {
		*j = v
	}
	return nil
}

// jsonObject is a JSON object decoded into T; anything else leaves it
// unset.
type jsonObject[T any] struct {
	v   T
	set bool
}

func (j *jsonObject[T]) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		j.set = json.Unmarshal(b, &j.v) == nil
	}
	return nil
}

// jsonPresent is true for any value but null, false, "" and an empty list
// (the ways configs say "no template").
type jsonPresent bool

func (j *jsonPresent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch string(b) {
	case "null", "false", `""`, "[]", "{}":
		*j = false
	default:
		*j = true
	}
	return nil
}
