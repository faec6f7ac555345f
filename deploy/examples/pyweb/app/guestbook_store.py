"""The guestbook's entries in SQLite (a module of its own: imported from the
encrypted code volume like any other)."""
import os
import sqlite3


class Store:
    def __init__(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.db = sqlite3.connect(path)
        # A commit ends with an fsync of the journal (not with its removal,
        # SQLite's default): under the runtime a volume's namespace changes
        # are durable at the program's next sync point, so a process killed
        # right after a DELETE-mode commit would find its journal again and
        # roll the transaction back (docs/deploy.md).
        self.db.execute("PRAGMA journal_mode=TRUNCATE")
        self.db.execute("CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY, text TEXT)")
        self.db.commit()

    def add(self, text):
        self.db.execute("INSERT INTO entries (text) VALUES (?)", (text,))
        self.db.commit()

    def entries(self):
        return [{"id": i, "text": t} for i, t in self.db.execute("SELECT id, text FROM entries ORDER BY id")]
