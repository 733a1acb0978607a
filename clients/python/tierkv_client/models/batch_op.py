from enum import Enum

class BatchOp(str, Enum):
    DELETE = "delete"
    GET = "get"
    PUT = "put"

    def __str__(self) -> str:
        return str(self.value)
