"""Where the log and the read models live: SQLite files and PostgreSQL schemas.

``url`` parses ledger URLs; ``database`` opens connections and transactions behind one
interface; ``schema`` creates the tables; ``event_log`` appends and reads
``stored_events``; ``codec`` turns events into stored JSON and back; ``sql_views`` and
``catch_up`` keep the read models as SQL tables.
"""
