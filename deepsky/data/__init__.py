"""Data on disk: the HDF5 dataset store, readers of FITS images, catalogues and cutout stacks, tables."""
