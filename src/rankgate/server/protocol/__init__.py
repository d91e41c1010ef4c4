"""Wire types, one module per dialect. Dialect field names live only here."""
