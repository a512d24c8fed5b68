// Package reconcile makes the models on this host match the models declared
// for it. Its Provisioner is the one-model operation, EnsurePresent: fetch
// and verify one model, record it in the catalog, and write its engine
// handoff. The one-shot ensure command calls it directly; the agent's
// reconcile loop calls it for every declared model.
package reconcile
