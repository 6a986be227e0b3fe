"""Public pages: home, about, sign in and out, register, password reset, the OAuth callbacks."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError

from accounts import serializers as s
from accounts import sessions
from accounts.api.turnstile import SESSION_KEY as TURNSTILE_SESSION_KEY
from accounts.api.turnstile import verify_token
from accounts.models import User
from accounts.services import oauth, users
from accounts.services.email import reset_password, send_password_reset, send_verification_code
from newapi_site.api.base import ApiError
from newapi_site.api.ratelimit import allow_critical, client_ip
from newapi_site.options import options

from .common import fail, page_user, safe_next, show

LOGIN_FIELDS = ("username", "password")
REGISTER_FIELDS = ("username", "password", "password2", "email", "verification_code", "aff_code")


def _guard(request: HttpRequest) -> None:
    """The per-IP limit and Turnstile that `/api` puts before every password-guessing door."""
    if not allow_critical(request):
        raise ApiError(_("Too many attempts, try again later"))
    if not options.get_bool("TurnstileCheckEnabled") or request.session.get(TURNSTILE_SESSION_KEY):
        return
    token = request.POST.get("cf-turnstile-response", "").strip()
    if not token:
        raise ApiError("Turnstile token 为空")
    if not verify_token(token, client_ip(request)):
        raise ApiError("Turnstile 校验失败，请刷新重试！")
    request.session[TURNSTILE_SESSION_KEY] = True


def _start(request: HttpRequest, user: User) -> None:
    """The console session; staff are signed in to the admin too, so its link needs no second login."""
    sessions.start(request.session, user)
    if user.is_staff:
        auth.login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])


def home(request: HttpRequest) -> HttpResponse:
    return show(
        request,
        "console/home.html",
        {"notice": options.get("Notice"), "content": options.get("HomePageContent")},
    )


def about(request: HttpRequest) -> HttpResponse:
    return show(request, "console/about.html", {"about": options.get("About")})


def login(request: HttpRequest) -> HttpResponse:
    form = {"username": ""}
    if request.method == "POST":
        form["username"] = request.POST.get("username", "")
        try:
            _guard(request)
            data = s.validated(s.LoginBody, {k: request.POST.get(k, "") for k in LOGIN_FIELDS})
            user = users.authenticate_user(data["username"].strip(), data["password"])
        except (ApiError, ValidationError) as exc:
            fail(request, exc)
        else:
            _start(request, user)
            return HttpResponseRedirect(safe_next(request))
    elif page_user(request) is not None:
        return HttpResponseRedirect(safe_next(request))
    return show(request, "console/login.html", {"form": form, "next": safe_next(request, "")})


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    auth.logout(request)  # ends the whole session: console and admin alike
    return HttpResponseRedirect("/login")


def register(request: HttpRequest) -> HttpResponse:
    aff = request.GET.get("aff", "") or request.POST.get("aff_code", "")
    if aff:
        request.session["aff"] = aff  # an OAuth sign-up from here keeps the invitation too
    form = {k: request.POST.get(k, "") for k in REGISTER_FIELDS if k not in ("password", "password2")}
    form.setdefault("aff_code", aff)
    form["aff_code"] = form["aff_code"] or aff
    if request.method == "POST":
        try:
            _guard(request)
            if request.POST.get("action") == "send_code":
                send_verification_code(request.POST.get("email", ""))
                messages.success(request, _("A verification code was sent to your email"))
            else:
                if request.POST.get("password", "") != request.POST.get("password2", ""):
                    raise ApiError(_("The two passwords differ"))
                data = s.validated(s.RegisterBody, {k: request.POST.get(k, "") for k in REGISTER_FIELDS})
                users.register_user(data)
                messages.success(request, _("Registered. Sign in with your new account."))
                return HttpResponseRedirect("/login")
        except (ApiError, ValidationError) as exc:
            fail(request, exc)
    return show(request, "console/register.html", {"form": form})


def reset(request: HttpRequest) -> HttpResponse:
    """Asks for the mail whose link opens /user/reset."""
    if request.method == "POST":
        try:
            _guard(request)
            send_password_reset(request.POST.get("email", ""))
            messages.success(request, _("If the address is registered, a reset link is on its way"))
        except ApiError as exc:
            fail(request, exc)
    return show(request, "console/reset.html", {"email": request.POST.get("email", "")})


def user_reset(request: HttpRequest) -> HttpResponse:
    """The mail's link: a confirm button (so a link preview cannot use it up), then the new password."""
    email = request.POST.get("email") or request.GET.get("email", "")
    token = request.POST.get("token") or request.GET.get("token", "")
    new_password = ""
    if request.method == "POST":
        try:
            _guard(request)
            new_password = reset_password(email, token)
        except ApiError as exc:
            fail(request, exc)
    return show(
        request, "console/user_reset.html", {"email": email, "token": token, "new_password": new_password}
    )


def _finish_oauth(request: HttpRequest, provider: str) -> HttpResponse:
    """The provider's redirect back; it carries no Strict session cookie, so first hop to ourselves.

    The first visit renders a page that reloads the same URL with `finish=1`: that navigation
    starts on our own site, so the browser sends the session that holds the OAuth state.
    """
    if request.GET.get("error"):
        messages.error(request, request.GET.get("error_description") or request.GET["error"])
        return HttpResponseRedirect("/login")
    if request.GET.get("finish") != "1":
        params = request.GET.copy()
        params["finish"] = "1"
        return show(request, "console/oauth_hop.html", {"target": f"{request.path}?{params.urlencode()}"})
    code = request.GET.get("code", "")
    try:
        if not allow_critical(request):
            raise ApiError(_("Too many attempts, try again later"))
        oauth.check_state(request.session, request.GET.get("state", ""))
        if provider == "github":
            identity = oauth.github_identity(code)
        elif provider == "oidc":
            identity = oauth.oidc_identity(code)
        else:
            identity = oauth.linuxdo_identity(code, request.build_absolute_uri("/api/oauth/linuxdo"))
        current = page_user(request)
        if current is not None:
            oauth.bind_identity(current, identity)
            messages.success(request, _("Account bound"))
            return HttpResponseRedirect("/setting")
        user = oauth.login_or_register(identity, request.session.get("aff", ""))
    except ApiError as exc:
        fail(request, exc)
        return HttpResponseRedirect("/login")
    _start(request, user)
    return HttpResponseRedirect("/detail")


def oauth_github(request: HttpRequest) -> HttpResponse:
    return _finish_oauth(request, "github")


def oauth_oidc(request: HttpRequest) -> HttpResponse:
    return _finish_oauth(request, "oidc")


def oauth_linuxdo(request: HttpRequest) -> HttpResponse:
    return _finish_oauth(request, "linuxdo")


def oauth_start(request: HttpRequest, provider: str) -> HttpResponse:
    """Sends the browser to the provider with a fresh state nonce kept in the session."""
    status_aff = request.session.get("aff", "")
    state = oauth.new_state(request.session, status_aff)
    origin = (options.get("ServerAddress") or request.build_absolute_uri("/")).rstrip("/")
    if provider == "github":
        query = {"client_id": options.get("GitHubClientId"), "state": state, "scope": "user:email"}
        return HttpResponseRedirect(
            settings.GITHUB_OAUTH_URL.rstrip("/") + f"/login/oauth/authorize?{urlencode(query)}"
        )
    if provider == "linuxdo":
        query = {"client_id": options.get("LinuxDOClientId"), "state": state, "response_type": "code"}
        return HttpResponseRedirect(f"https://connect.linux.do/oauth2/authorize?{urlencode(query)}")
    query = {
        "client_id": options.get("oidc.client_id"),
        "redirect_uri": f"{origin}/oauth/oidc",
        "response_type": "code",
        "scope": "openid profile email",
        "state": state,
    }
    return HttpResponseRedirect(f"{options.get('oidc.authorization_endpoint')}?{urlencode(query)}")


def _sign_in_with(request: HttpRequest, identity_of, *, allow_register: bool) -> HttpResponse:
    try:
        if not allow_critical(request):
            raise ApiError(_("Too many attempts, try again later"))
        identity = identity_of()
        current = page_user(request)
        if current is not None:
            oauth.bind_identity(current, identity)
            messages.success(request, _("Account bound"))
            return HttpResponseRedirect("/setting")
        user = oauth.login_or_register(
            identity, request.session.get("aff", ""), allow_register=allow_register
        )
    except ApiError as exc:
        fail(request, exc)
        return HttpResponseRedirect("/login")
    _start(request, user)
    return HttpResponseRedirect("/detail")


def oauth_wechat(request: HttpRequest) -> HttpResponse:
    return _sign_in_with(
        request, lambda: oauth.wechat_identity(request.GET.get("code", "")), allow_register=True
    )


def oauth_telegram(request: HttpRequest) -> HttpResponse:
    """The Telegram widget's redirect: signs in an account already bound to that Telegram user."""
    params = {k: request.GET.get(k, "") for k in request.GET if k != "state"}
    return _sign_in_with(request, lambda: oauth.telegram_identity(params), allow_register=False)
