"""The method's math: how a sentence becomes a vector (pooling at a layer) and how translations align (InfoNCE)."""
