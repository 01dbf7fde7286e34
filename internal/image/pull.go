package image

// HoldChains marks chains as in use by a pull (or any registration) that
// has not created its image yet, so that a concurrent Delete or prune
// leaves them alone; release undoes it. A registry pull holds the chains
// of every layer of the image from before its first download until its
// config is stored.
func (s *Store) HoldChains(chains []string) (release func()) { return s.holdChains(chains) }

// RemoveIfUnused removes each of chains that no image and no held
// registration uses: what a failed pull registered for nothing. It is best
// effort; the engine's start removes what remains.
func (s *Store) RemoveIfUnused(chains []string) {
	for i := len(chains) - 1; i >= 0; i-- {
		s.removeIfUnused(chains[i])
	}
}

// ChainIDs returns the chain ID of every prefix of diffIDs, base first.
func ChainIDs(diffIDs []string) []string { return chainIDs(diffIDs) }
