"""Moving data in from other CRMs (and, later, out): importers per source format, with the
external ids that make re-importing the same files create nothing twice."""
