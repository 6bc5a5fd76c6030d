package api

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The shard of a hash key is the one whose ListShards range holds it,
// for shard counts that do and do not divide 2^128, at the boundaries.
func TestShardOfKeyMatchesListedRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	for _, n := range []int{1, 2, 3, 5, 7, 64, 100, 256} {
		for i := range n {
			begin, end := shardKeyBound(i, n), shardKeyBound(i+1, n)
			// ceil(i*2^128/n), computed with big.Int.
			want := new(big.Int).Mul(space, big.NewInt(int64(i)))
			want.Add(want, big.NewInt(int64(n-1)))
			want.Div(want, big.NewInt(int64(n)))
			require.Equal(t, fmt.Sprintf("%032x", want), begin, "n=%d i=%d", n, i)
			got, err := shardOfKey(begin, n)
			require.NoError(t, err)
			require.Equal(t, i, got, "first key of shard %d/%d", i, n)
			if i+1 < n {
				prev, _ := new(big.Int).SetString(end, 16)
				prev.Sub(prev, big.NewInt(1))
				got, err = shardOfKey(fmt.Sprintf("%032x", prev), n)
				require.NoError(t, err)
				require.Equal(t, i, got, "last key of shard %d/%d", i, n)
			}
		}
		for range 200 {
			k := fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
			s, err := shardOfKey(k, n)
			require.NoError(t, err)
			require.True(t, shardKeyBound(s, n) <= k && (s == n-1 || k < shardKeyBound(s+1, n)), "key %s in shard %d/%d", k, s, n)
		}
	}
	_, err := shardOfKey("xyz", 2)
	require.Error(t, err)
	_, err = shardOfKey("0123456789abcdef0123456789abcdef0", 2)
	require.Error(t, err)
	s, err := shardOfKey("8", 2) // a short key is a prefix
	require.NoError(t, err)
	require.Equal(t, 1, s)
}
