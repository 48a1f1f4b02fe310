"""The pygls language server: thin glue over analysis, engine and rules; see its issue."""
