"""What every layer shares, at the bottom: types, errors, instants, words, redaction.

``types``: a record, a partition's context, a page; ``errors``: the tap's errors and exit
codes; ``instants``: time as integer nanoseconds; ``text``: counts in words; ``redaction``:
no secret in any output.

Imports nothing of the tap. Imported by every other package.
"""
