import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create the first superuser with a random password, print it once and keep it in a 0600 file. "
        "Does nothing when the user exists."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@localhost")
        parser.add_argument("--credentials-file", required=True, type=Path,
                            help="Where the generated credentials are kept (created with mode 0600).")

    def handle(self, *args, username, email, credentials_file: Path, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            where = f" (see {credentials_file})" if credentials_file.exists() else ""
            self.stdout.write(f"Admin user {username!r} exists{where}.")
            return
        password = secrets.token_urlsafe(16)
        credentials_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise CommandError(f"cannot write {credentials_file}: {exc.strerror}") from None
        with os.fdopen(fd, "w") as handle:
            handle.write(f"username: {username}  password: {password}\n")
        User.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(self.style.SUCCESS(
            f"Created admin user {username!r} with password {password} (kept in {credentials_file})."
        ))
