import sys

import sqlparse


def main() -> None:
    text = open(sys.argv[1]).read()
    print(sqlparse.format(text, reindent=True, keyword_case="upper"))
