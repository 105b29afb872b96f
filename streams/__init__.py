"""The Faust app, settings, topic and table declarations, the embedded broker and the CLI."""
