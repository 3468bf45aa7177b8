"""Files in and out: readers that open only what a name says, safe archives, column
spellings, text encodings, and spreadsheet-safe CSV cells."""
