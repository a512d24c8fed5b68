// Package modelinfo describes a model on disk for the engines that will load
// it: its format, architecture, trained context length, quantization,
// parameter and tensor counts, tokenizer and chat template, the files it is
// made of, and an estimate of the memory it needs. Inspect is the entry
// point; Engine and DefaultEngine choose the form of the handoff file.
//
// Only headers and small metadata files are read: a multi-gigabyte GGUF file
// costs its header (kilobytes, or a few megabytes with a large vocabulary),
// and a Transformers directory its config.json, its weights index and one
// walk of its entries. Everything read is bounded (see the gguf package's
// limits, MaxJSONBytes and MaxDirEntries), so a hostile file yields an error,
// never a large allocation.
//
// # Complete models only
//
// A model made of several files is described only when every file is there:
// a split GGUF (NAME-00001-of-00003.gguf and its siblings, each checked
// against the split.no and split.count keys of its header) or a safetensors
// directory whose model.safetensors.index.json (or NAME-0000i-of-0000N shard
// names) lists more files than are present yields ErrMissingShard, naming the
// missing files. Engines are given the first shard of a split GGUF, so
// inspecting any other shard yields ErrNotFirstShard.
//
// # Memory estimate
//
// Info.Memory helps a launcher pick a context size that fits a GPU:
//
//	memory(ctx) ≈ weights_bytes + ctx × kv_bytes_per_token   (+ compute buffers)
//	largest ctx ≈ (gpu_bytes − weights_bytes − reserve) / kv_bytes_per_token
//
// For GGUF, weights_bytes is the size of the tensor data, which llama.cpp
// loads as it is stored: the sum over every tensor of every shard of
//
//	(elements / block_elements(type)) × block_bytes(type)
//
// with the ggml block layouts (F32 4 bytes per element, F16 and BF16 2, Q8_0
// 34 bytes per 32 elements, Q4_0 18 per 32, Q4_K 144 per 256, Q6_K 210 per
// 256, ...). When a tensor has a type this package does not know, it is the
// size of the data section instead (file size minus data offset, summed over
// shards), which differs only by alignment padding.
//
// kv_bytes_per_token is the KV cache for one token of context with
// llama.cpp's default f16 cache (2 bytes per element):
//
//	kv_bytes_per_token = Σ over layers of head_count_kv × (key_length + value_length) × 2
//
// from the GGUF keys <arch>.block_count (the layers), <arch>.attention.head_count_kv
// (default: head_count) and <arch>.attention.key_length and .value_length,
// which default to head_dim = <arch>.embedding_length / <arch>.attention.head_count.
// With one head_count_kv for every layer and no key or value length keys
// this is the familiar
//
//	kv_bytes_per_token = 2 (K and V) × block_count × head_count_kv × head_dim × 2 bytes
//
// so a Llama-3-8B-shaped model (32 layers, 4096 embedding, 32 heads, 8 KV
// heads, head_dim 128) needs 2 × 32 × 8 × 128 × 2 = 131072 bytes (128 KiB)
// per token, and 1 GiB for an 8192-token context. Head counts given per
// layer (arrays) are summed layer by layer; layers with no KV heads cache
// nothing.
//
// For safetensors directories the same formula is applied to config.json
// (num_hidden_layers, num_key_value_heads defaulting to num_attention_heads,
// head_dim defaulting to hidden_size / num_attention_heads) with vLLM's
// default cache dtype, which is the model's: 2 bytes (bf16 or f16).
// weights_bytes is metadata.total_size from the index, or the size of the
// .safetensors files.
//
// The estimate assumes every layer caches every token: for sliding-window
// layers (Gemma 2 and 3, for example) and for compressed attention caches
// (DeepSeek's MLA) the engine needs less, so the estimate is an upper bound.
// A quantized KV cache (llama.cpp --cache-type-k q8_0, vLLM
// --kv-cache-dtype fp8) scales kv_bytes_per_token by its element size over
// 2. Recurrent models (Mamba, RWKV) have no KV cache of this shape and get
// no kv_bytes_per_token.
package modelinfo
