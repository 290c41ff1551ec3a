"""The signed-in user's account: change the password."""

from app.ui import auth_forms
from app.ui import services as svc

services = svc.get()
auth_forms.change_password_form(services, auth_forms.require_user(services))
