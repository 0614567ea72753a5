"""The matrix of variants and the template's single sources of truth."""

from .hooks import extension
from .support import OPTIONS, TEMPLATE, VARIANTS, choice_pairs, pairwise_variants

PACKAGE = TEMPLATE / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}"


def test_every_combination_of_choices_is_a_variant() -> None:
    assert len(VARIANTS) == 36  # 2 databases x 3 JWT libraries x 2 hashers x 3 structures
    assert len({tuple(v.values()) for v in VARIANTS}) == len(VARIANTS)
    assert set(OPTIONS) == {"database", "jwt_library", "password_hashing", "structure"}


def test_pairwise_subset_covers_every_pair_of_choices_that_change_behaviour() -> None:
    subset = pairwise_variants(VARIANTS)
    assert set().union(*map(choice_pairs, subset)) == set().union(*map(choice_pairs, VARIANTS))
    assert {v["structure"] for v in subset} == set(OPTIONS["structure"])
    assert len(subset) <= len(VARIANTS) / 6


def test_every_structure_has_a_layout() -> None:
    assert set(extension.LAYOUTS) == set(OPTIONS["structure"])


def test_every_choice_has_its_requirement() -> None:
    for option, requirements in extension.REQUIREMENTS.items():
        assert set(requirements) == set(OPTIONS[option])


def test_a_role_written_per_choice_has_a_module_for_every_choice() -> None:
    for role, option in extension.OPTION_ROLES.items():
        for choice in OPTIONS[option]:
            assert (PACKAGE / f"{extension.option_module(role, choice)}.py").is_file()


def test_every_role_file_exists_once_and_every_layout_places_it() -> None:
    per_choice = {
        extension.option_module(role, choice): role
        for role, option in extension.OPTION_ROLES.items()
        for choice in OPTIONS[option]
    }
    stems = {p.stem for p in PACKAGE.glob("*.py") if not p.name.startswith("__")}
    roles = {per_choice.get(stem, stem) for stem in stems}
    for layout in extension.LAYOUTS.values():
        assert set(layout) == roles
        assert len(set(layout.values())) == len(layout)
