"""Everything that touches the world: event stores, the CLI, import/export, providers."""
