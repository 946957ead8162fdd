"""The filter DSL: parse JSON, validate it against a field registry, compile it to SQL."""
