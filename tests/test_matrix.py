"""The matrix of variants and the template's single sources of truth."""

from .hooks import extension, post_gen
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


def test_hook_knows_exactly_the_choices_of_cookiecutter_json() -> None:
    from .hooks import pre_gen

    assert {k: list(v) for k, v in pre_gen.CHOICES.items()} == OPTIONS


def test_removal_list_names_files_of_the_template() -> None:
    for option, keep_for, paths in post_gen.OPTION_FILES:
        assert keep_for in OPTIONS[option]
        for path in paths:
            assert (TEMPLATE / "{{cookiecutter.project_slug}}" / path).exists(), path


def test_every_role_file_exists_once_and_every_layout_places_it() -> None:
    roles = {p.stem for p in PACKAGE.glob("*.py") if not p.name.startswith("__")}
    for layout in extension.LAYOUTS.values():
        assert set(layout) == roles
        assert len(set(layout.values())) == len(layout)
