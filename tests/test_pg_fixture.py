from __future__ import annotations

import psycopg


def test_each_test_gets_its_own_empty_database_on_a_real_server(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        (tables,) = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone() or (None,)
        conn.execute("CREATE TABLE probe (x int)")
        (name,) = conn.execute("SELECT current_database()").fetchone() or (None,)

    assert tables == 0
    assert str(name).startswith("sora_test_")
