package handoff

import (
	"github.com/model-provisioner/model-provisioner/modelinfo"
)

// Registration is what the catalog knows about a model apart from what its
// files say: its identity, where it was registered, and how it was verified.
type Registration struct {
	// ID is the normalized model reference.
	ID string
	// Name is the model's name from its spec.
	Name string
	// Path is the file or directory as registered (the catalog's local
	// path).
	Path string
	// SizeBytes is the registered size, used when Info has none.
	SizeBytes int64
	// Digest is "sha256:<hex>" of a single-file model, or "".
	Digest string
	// Verification is the verification outcome ("pass", "warn").
	Verification string
}

// Build returns the handoff document for a model in the form engine reads;
// an empty engine means modelinfo.DefaultEngine(info), and an engine
// modelinfo.ParseEngine would reject means generic. info is what
// modelinfo.Inspect reported for reg.Path; a zero Info gives a document with
// only the registered facts.
//
// model.path depends on the engine:
//   - llamacpp: the GGUF file, which for a split model is the first shard and
//     for a directory holding a GGUF model is that file (info.Path);
//   - vllm: the model directory of a safetensors model, or the GGUF file
//     (info.Path), with model.tokenizer set when a tokenizer directory other
//     than model.path is known;
//   - generic: reg.Path, as registered, with model.tokenizer as for vllm.
//
// Every form has model.id, model.path, metadata.size_bytes and
// metadata.ctx_max (null when unknown), and the same metadata. Build is a
// pure function.
func Build(engine modelinfo.Engine, reg Registration, info modelinfo.Info) File {
	switch engine {
	case "":
		engine = modelinfo.DefaultEngine(info)
	case modelinfo.EngineLlamaCPP, modelinfo.EngineVLLM, modelinfo.EngineGeneric:
	default:
		engine = modelinfo.EngineGeneric
	}
	f := File{
		SchemaVersion: SchemaVersion,
		Engine:        string(engine),
		Model:         Model{ID: reg.ID, Path: reg.Path, Name: reg.Name},
		Metadata: Metadata{
			SizeBytes:      reg.SizeBytes,
			Format:         info.Format,
			Architecture:   info.Architecture,
			Digest:         reg.Digest,
			Verification:   reg.Verification,
			FileType:       info.FileType,
			ParameterCount: info.ParameterCount,
			TensorCount:    info.TensorCount,
			TokenizerModel: info.TokenizerModel,
			GGUFVersion:    info.GGUFVersion,
		},
	}
	if info.SizeBytes > 0 {
		f.Metadata.SizeBytes = info.SizeBytes
	}
	if info.CtxMax > 0 {
		v := info.CtxMax
		f.Metadata.CtxMax = &v
	}
	if info.Format != "" && info.Format != modelinfo.FormatUnknown {
		v := info.FileTypeID
		if info.Format == modelinfo.FormatGGUF && v >= 0 {
			f.Metadata.FileTypeID = &v
		}
		ct := info.ChatTemplate
		f.Metadata.ChatTemplate = &ct
	}
	for _, s := range info.Shards {
		f.Metadata.Shards = append(f.Metadata.Shards, Shard(s))
	}
	if m := info.Memory; m != nil {
		f.Metadata.Memory = &Memory{WeightsBytes: m.WeightsBytes, KVBytesPerToken: m.KVBytesPerToken, KVCacheType: m.KVCacheType}
	}

	switch engine {
	case modelinfo.EngineLlamaCPP:
		if info.Path != "" {
			f.Model.Path = info.Path
		}
	case modelinfo.EngineVLLM:
		if info.Path != "" {
			f.Model.Path = info.Path
		}
		f.Model.Tokenizer = separate(info.Tokenizer, f.Model.Path)
	case modelinfo.EngineGeneric:
		f.Model.Tokenizer = separate(info.Tokenizer, f.Model.Path)
	}
	return f
}

// separate returns tokenizer unless it is the model path itself, which an
// engine then needs no second time.
func separate(tokenizer, modelPath string) string {
	if tokenizer == modelPath {
		return ""
	}
	return tokenizer
}
