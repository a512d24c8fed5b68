package reconcile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/model-provisioner/model-provisioner/catalog"
	"github.com/model-provisioner/model-provisioner/fetch"
	"github.com/model-provisioner/model-provisioner/handoff"
	"github.com/model-provisioner/model-provisioner/internal/ggufgen"
	"github.com/model-provisioner/model-provisioner/modelinfo"
)

func TestProvisioner_SplitGGUF(t *testing.T) {
	e := newEnv(t)
	var shards []string
	for i := range 3 {
		kvs := []ggufgen.KV{{Key: "split.no", Value: uint16(i)}, {Key: "split.count", Value: uint16(3)}}
		if i == 0 {
			kvs = append([]ggufgen.KV{{Key: "general.architecture", Value: "llama"}, {Key: "llama.context_length", Value: uint32(4096)}}, kvs...)
		}
		p := filepath.Join(e.dir, fmt.Sprintf("m-%05d-of-00003.gguf", i+1))
		require.NoError(t, ggufgen.WriteFile(p, 3, kvs, nil))
		shards = append(shards, p)
	}
	ref, err := fetch.ParseRef(shards[0], "/")
	require.NoError(t, err)
	hp := filepath.Join(e.dir, "handoff", "m.json")

	_, err = e.prov.Ensure(context.Background(), Spec{Name: "m", Ref: ref})
	require.NoError(t, err)
	f, err := handoff.Read(hp)
	require.NoError(t, err)
	assert.Equal(t, shards[0], f.Model.Path)
	assert.Len(t, f.Metadata.Shards, 3)

	require.NoError(t, os.Remove(shards[2]))
	_, err = e.prov.Ensure(context.Background(), Spec{Name: "m", Ref: ref})
	require.ErrorIs(t, err, modelinfo.ErrMissingShard)
	assert.True(t, fetch.IsPermanent(err))
	assert.NoFileExists(t, hp, "an incomplete model is not handed to engines")
	entry, err := e.cat.Get(ref.ID())
	require.NoError(t, err)
	assert.Equal(t, catalog.Retired, entry.Lifecycle)

	// A new model with a missing shard never becomes Active.
	ref2, err := fetch.ParseRef(shards[1], "/")
	require.NoError(t, err)
	_, err = e.prov.Ensure(context.Background(), Spec{Name: "m2", Ref: ref2})
	require.ErrorIs(t, err, modelinfo.ErrNotFirstShard)
	assert.NoFileExists(t, filepath.Join(e.dir, "handoff", "m2.json"))
}
