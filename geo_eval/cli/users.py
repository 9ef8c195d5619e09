"""``geo-eval users``: people and scripts allowed to use the service, and their tokens.

``users add`` and ``users token`` print the new token as their last line (and nowhere else: the
store keeps only a salted hash), so a script can take it with ``tail -n 1``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from geo_eval.cli.options import DatabaseOpt, out, store_label, with_store
from geo_eval.cli.runs import DataDirOpt
from geo_eval.storage import DEFAULT_DATA_DIR, ROLE_LABELS

app = typer.Typer(help="用户与令牌", no_args_is_help=True)


class RoleChoice(StrEnum):
    reviewer = "reviewer"
    committee = "committee"
    admin = "admin"


@app.command("add", help="新建用户，最后一行输出其令牌（只显示这一次）")
def add(
    name: Annotated[str, typer.Argument(help="用户名")],
    role: Annotated[
        RoleChoice, typer.Option("--role", help="reviewer 自然资源局复核人员；committee 园区管委会；admin 管理员")
    ],
    park: Annotated[list[str] | None, typer.Option("--park", help="园区管委会可查看的园区（可重复）")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="用户已存在时更新角色和园区并换发令牌")] = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    db: DatabaseOpt = None,
) -> None:
    """Create a user and print the token as the last line."""
    user, token = with_store(
        data_dir, db, lambda s: s.add_user(name, role.value, park or [], actor="cli", replace=replace)
    )
    scope = "全部园区" if user.sees_all_parks() else "、".join(user.parks)
    out.print(f"用户 {user.name}（{ROLE_LABELS[user.role]}，可查看：{scope}）的令牌如下，只显示这一次：")
    typer.echo(token)


@app.command("token", help="换发令牌（旧令牌和浏览器会话立即失效），最后一行输出新令牌")
def token(
    name: Annotated[str, typer.Argument(help="用户名")], data_dir: DataDirOpt = DEFAULT_DATA_DIR, db: DatabaseOpt = None
) -> None:
    """Rotate a user's token and print the new one as the last line."""
    new = with_store(data_dir, db, lambda s: s.rotate_token(name, actor="cli"))
    out.print(f"用户 {name} 的新令牌如下，只显示这一次：")
    typer.echo(new)


@app.command("list", help="列出用户（不含令牌）")
def list_users(data_dir: DataDirOpt = DEFAULT_DATA_DIR, db: DatabaseOpt = None) -> None:
    """List the users."""
    users = with_store(data_dir, db, lambda s: s.list_users())
    t = Table(title=f"用户（{store_label(data_dir, db)}）")
    for c in ("用户名", "角色", "园区", "创建时间"):
        t.add_column(c)
    for u in users:
        t.add_row(u.name, ROLE_LABELS[u.role], "全部" if u.sees_all_parks() else "、".join(u.parks), u.created)
    out.print(t)


@app.command("remove", help="删除用户（其复核记录保留）")
def remove(
    name: Annotated[str, typer.Argument(help="用户名")], data_dir: DataDirOpt = DEFAULT_DATA_DIR, db: DatabaseOpt = None
) -> None:
    """Delete a user."""
    with_store(data_dir, db, lambda s: s.delete_user(name, actor="cli"))
    out.print(f"已删除用户 {name}")
