"""Staff teach the assistant from the chat (issue 11).

records.py      learned.yaml: read, validate, merge into the knowledge base, append, undo
suggestions.py  per group of unanswered questions: a short id and the entries it most likely belongs to
teach.py        a decision applied to the file and the running assistant, with the conflict check

Nothing here imports telegram; the engine is reached only through Assistant.suggest,
Assistant.match_score and Assistant.apply_learned.
"""
