"""Text as every part of the engine compares it: normalisation, sentences and words,
language detection. Pure functions; nothing here knows of an index."""
