"""The home list's markup, which the server writes into the page and the page sets as its list's innerHTML."""

from __future__ import annotations

from py_shared.task_badges import badges, task_items_html

TASK = {"id": "t-1", "title": '<img src=x onerror="alert(1)"> & co', "data_type": "tabular", "scheme": "federated"}


def test_each_task_is_one_item_with_its_link_and_badges_and_nothing_of_the_title_is_markup() -> None:
    markup = task_items_html([TASK, {**TASK, "id": "t-2", "scheme": "local", "private": True}])
    assert markup.count("<li ") == 2 and '<li data-task="t-2"><a href="#/task/t-2">' in markup
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; co</a>" in markup and "<img" not in markup
    assert "".join(f'<span class="badge">{b}</span>' for b in badges(TASK)) in markup
    assert '<span class="badge">private: join token</span></li>' in markup
    assert task_items_html([]) == ""
