"""Users and tokens (administrators only)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import AdminUser, StoreDep
from api.schemas import UserCreate, UserPublic, UserToken

router = APIRouter(prefix="/api/users", tags=["用户"])


@router.get("", summary="用户列表（管理员）", response_model=list[UserPublic])
def list_users(admin: AdminUser, store: StoreDep) -> list[UserPublic]:
    return [UserPublic.of(u) for u in store.list_users()]


@router.post(
    "",
    summary="新建用户并生成令牌（管理员）",
    description="令牌只在此返回一次，服务只保存其加盐哈希。",
    response_model=UserToken,
    status_code=201,
)
def add_user(body: UserCreate, admin: AdminUser, store: StoreDep) -> UserToken:
    user, token = store.add_user(body.name, body.role, body.parks, actor=admin.name, replace=body.replace)
    return UserToken(user=UserPublic.of(user), token=token)


@router.post(
    "/{name}/token",
    summary="换发令牌（管理员）",
    description="旧令牌和该用户的浏览器会话立即失效。",
    response_model=UserToken,
)
def rotate_token(name: str, admin: AdminUser, store: StoreDep) -> UserToken:
    token = store.rotate_token(name, actor=admin.name)
    return UserToken(user=UserPublic.of(store.get_user(name)), token=token)


@router.delete("/{name}", summary="删除用户（管理员）", status_code=204, response_class=Response)
def delete_user(name: str, admin: AdminUser, store: StoreDep) -> Response:
    store.delete_user(name, actor=admin.name)
    return Response(status_code=204)
