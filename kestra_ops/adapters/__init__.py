"""One module per outside system. Everything that talks to a binary or over a wire lives here."""
