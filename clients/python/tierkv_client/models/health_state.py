from enum import Enum

class HealthState(str, Enum):
    DEGRADED = "degraded"
    HEALTHY = "healthy"
    UNAVAILABLE = "unavailable"

    def __str__(self) -> str:
        return str(self.value)
