"""The parts `codeling runs` and `codeling report` share: reading run folders (`files`), the
report's document model (`doc`) and its plots (`plots`). No torch import anywhere here."""
