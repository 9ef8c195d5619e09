"""Land use: areas and CRS, land-use controls, raster evidence, land flags (a registry of rules), renewal blocks."""
