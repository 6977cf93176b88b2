"""kadr's shared code, as packages with one owner each (docs/architecture.md). Importing it
changes nothing: the library patches are applied by the entry points (core/infra/patches/)."""
