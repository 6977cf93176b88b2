from kadr.cli import app

app()
